// One class per way the uplink can fail, each with a stable `code`.

/** Base of every uplink error; `code` is stable. */
export class UplinkError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UplinkError';
    this.code = code;
  }
}

/** The uplink configuration cannot work (bad URL, unreadable CA, missing Secret): never retried. */
export class UplinkConfigError extends UplinkError {
  constructor(message: string, options?: ErrorOptions) {
    super('EDGEBRIDGE_UPLINK_CONFIG', `uplink configuration: ${message}`, options);
    this.name = 'UplinkConfigError';
  }
}

/** The spool refused a message (disk full, closed, too large); the producer must not count it as delivered. */
export class UplinkRefusedError extends UplinkError {
  /** The spool's own code, e.g. EDGEBRIDGE_SPOOL_DISK_FULL. */
  readonly spoolCode: string | undefined;
  constructor(topic: string, cause: unknown) {
    const spoolCode = (cause as { code?: unknown } | null)?.code;
    super(
      'EDGEBRIDGE_UPLINK_REFUSED',
      `message on ${topic} not stored for the uplink: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'UplinkRefusedError';
    this.spoolCode = typeof spoolCode === 'string' ? spoolCode : undefined;
  }
}

/**
 * The spool could not be opened (its directory cannot be written, another
 * process holds it, a newer schema): the uplink cannot run, the rest of the agent can.
 */
export class UplinkSpoolError extends UplinkError {
  /** The spool's own code, e.g. EDGEBRIDGE_SPOOL_DIR_UNWRITABLE. */
  readonly spoolCode: string | undefined;
  constructor(dir: string, cause: unknown) {
    const spoolCode = (cause as { code?: unknown } | null)?.code;
    super(
      'EDGEBRIDGE_UPLINK_SPOOL',
      `uplink spool in ${dir} cannot be opened: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'UplinkSpoolError';
    this.spoolCode = typeof spoolCode === 'string' ? spoolCode : undefined;
  }
}

/** The uplink was closed; no more messages are accepted. */
export class UplinkClosedError extends UplinkError {
  constructor() {
    super('EDGEBRIDGE_UPLINK_CLOSED', 'uplink is closed');
    this.name = 'UplinkClosedError';
  }
}

/** A cloud-to-edge command that is not forwarded (bad topic, too large, unknown device). */
export class DownlinkRejectedError extends UplinkError {
  constructor(message: string) {
    super('EDGEBRIDGE_DOWNLINK_REJECTED', `downlink command rejected: ${message}`);
    this.name = 'DownlinkRejectedError';
  }
}
