/** A topic or topic filter outside the edgebridge scheme, or with a forbidden character. */
export class TopicError extends Error {
  readonly code = 'EDGEBRIDGE_BAD_TOPIC';
  constructor(message: string) {
    super(message);
    this.name = 'TopicError';
  }
}

/** The broker configuration (flags or --broker-config file) cannot be used; not retried. */
export class BrokerConfigError extends Error {
  readonly code = 'EDGEBRIDGE_BROKER_CONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BrokerConfigError';
  }
}

/** Work asked of a node broker after close() or destroy(). */
export class BrokerClosedError extends Error {
  readonly code = 'EDGEBRIDGE_BROKER_CLOSED';
  constructor() {
    super('the node broker is closed');
    this.name = 'BrokerClosedError';
  }
}

/** A client sent an MQTT packet larger than the broker accepts; its connection is closed. */
export class PacketTooLargeError extends Error {
  readonly code = 'EDGEBRIDGE_PACKET_TOO_LARGE';
  readonly size: number;
  constructor(size: number, limit: number) {
    super(`MQTT packet of ${size} bytes is larger than the limit of ${limit}`);
    this.name = 'PacketTooLargeError';
    this.size = size;
  }
}

/** The API server (or the registry back end) could not review a token; the client is refused. */
export class TokenReviewError extends Error {
  readonly code = 'EDGEBRIDGE_TOKEN_REVIEW';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TokenReviewError';
  }
}
