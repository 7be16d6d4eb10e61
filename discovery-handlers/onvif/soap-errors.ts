// Why an ONVIF SOAP call failed, one class per failure with a stable code.
// Messages never hold credentials, request or answer text: only what went
// wrong, so that they are safe in logs, conditions and events.

/** Base of every ONVIF SOAP failure; `retryable` says whether backing off and trying again may help. */
export abstract class OnvifSoapError extends Error {
  abstract readonly code: string;
  readonly retryable: boolean = true;
}

/** The camera refused our credentials (HTTP 401 after digest, or a NotAuthorized fault). */
export class OnvifAuthError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_AUTH';
  constructor(how: string) {
    super(`the camera refused the credentials (${how})`);
    this.name = 'OnvifAuthError';
  }
}

/** No whole answer within the call's time limit (a hanging or dripping camera). */
export class OnvifTimeoutError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_TIMEOUT';
  constructor(ms: number) {
    super(`no whole answer within ${ms} ms`);
    this.name = 'OnvifTimeoutError';
  }
}

/** The answer is larger than the cap; the rest was not read. */
export class OnvifTooLargeError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_TOO_LARGE';
  constructor(max: number) {
    super(`the answer is larger than ${max} bytes`);
    this.name = 'OnvifTooLargeError';
  }
}

/** The camera could not be reached (connection refused, reset, no route). */
export class OnvifUnreachableError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_UNREACHABLE';
  constructor(cause: string) {
    super(`the camera cannot be reached (${cause})`);
    this.name = 'OnvifUnreachableError';
  }
}

/** The answer is not a SOAP envelope we can read, or an HTTP status without one. */
export class OnvifBadAnswerError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_BAD_ANSWER';
  constructor(reason: string) {
    super(`the camera's answer is unusable: ${reason}`);
    this.name = 'OnvifBadAnswerError';
  }
}

/** A SOAP Fault other than NotAuthorized (e.g. an operation the camera lacks). */
export class OnvifFaultError extends OnvifSoapError {
  readonly code = 'EDGEBRIDGE_ONVIF_FAULT';
  readonly codes: string[];
  constructor(codes: string[], reason: string) {
    super(`SOAP fault ${codes.join('/') || '(no code)'}: ${reason.slice(0, 200)}`);
    this.name = 'OnvifFaultError';
    this.codes = codes;
  }
}
