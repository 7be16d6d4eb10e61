/** A ResourceClaim the kubelet asked about cannot be prepared (unknown, not allocated here, or gone). */
export class ClaimNotPreparableError extends Error {
  readonly code = 'EDGEBRIDGE_DRA_CLAIM';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClaimNotPreparableError';
  }
}

/** A kubelet request that is malformed (a missing uid, namespace or name; an unsafe value). */
export class BadKubeletRequestError extends Error {
  readonly code = 'EDGEBRIDGE_DRA_REQUEST';
  constructor(message: string) {
    super(message);
    this.name = 'BadKubeletRequestError';
  }
}

/** The DRA driver was closed; no more work is taken. */
export class DraClosedError extends Error {
  readonly code = 'EDGEBRIDGE_DRA_CLOSED';
  constructor() {
    super('the DRA driver is closed');
    this.name = 'DraClosedError';
  }
}
