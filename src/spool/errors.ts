// One class per way a spool call can fail, each with a stable `code` that callers
// and metrics match on (messages are for people and may change).

/** Base of every spool error; `code` is stable. */
export class SpoolError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SpoolError';
    this.code = code;
  }
}

/** The spool was closed or destroyed; no more work is accepted. */
export class SpoolClosedError extends SpoolError {
  constructor() {
    super('EDGEBRIDGE_SPOOL_CLOSED', 'spool is closed');
    this.name = 'SpoolClosedError';
  }
}

/** Work that was still pending when `destroy()` was called without an error of its own. */
export class SpoolDestroyedError extends SpoolError {
  constructor() {
    super('EDGEBRIDGE_SPOOL_DESTROYED', 'spool was destroyed before this work completed');
    this.name = 'SpoolDestroyedError';
  }
}

/** The file system is full: the append was not stored. Reading and acking still work. */
export class SpoolDiskFullError extends SpoolError {
  constructor(dir: string, options?: ErrorOptions) {
    super(
      'EDGEBRIDGE_SPOOL_DISK_FULL',
      `spool disk full in ${dir}: append not stored; it succeeds again once space is freed or acked`,
      options,
    );
    this.name = 'SpoolDiskFullError';
  }
}

/**
 * The spool's file cannot be read as a whole (garbage, torn or damaged
 * structure). Found on open, the file is moved aside and a fresh spool started;
 * found later, the next open does that.
 */
export class SpoolFileCorruptError extends SpoolError {
  /** What SQLite or the file system said, never the file's content. */
  readonly reason: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super('EDGEBRIDGE_SPOOL_FILE_CORRUPT', `spool file ${file} is damaged: ${reason}`, options);
    this.name = 'SpoolFileCorruptError';
    this.reason = reason;
  }
}

/** The spool's directory cannot be written at all (read-only mount, no permission): no spool can run there. */
export class SpoolDirUnwritableError extends SpoolError {
  constructor(dir: string, options?: ErrorOptions) {
    const why = (options?.cause as { code?: unknown } | undefined)?.code;
    super(
      'EDGEBRIDGE_SPOOL_DIR_UNWRITABLE',
      `spool directory ${dir} cannot be written${typeof why === 'string' ? ` (${why})` : ''}`,
      options,
    );
    this.name = 'SpoolDirUnwritableError';
  }
}

/** Another process (or another spool in this one) has the spool open. */
export class SpoolLockedError extends SpoolError {
  constructor(dir: string, options?: ErrorOptions) {
    super('EDGEBRIDGE_SPOOL_LOCKED', `spool in ${dir} is open elsewhere`, options);
    this.name = 'SpoolLockedError';
  }
}

/** One append call needs more bytes than the spool may ever hold (`maxBytes`). */
export class SpoolMessageTooLargeError extends SpoolError {
  constructor(bytes: number, maxBytes: number) {
    super(
      'EDGEBRIDGE_SPOOL_MESSAGE_TOO_LARGE',
      `append of ${bytes} bytes can never fit in a spool of maxBytes ${maxBytes}`,
    );
    this.name = 'SpoolMessageTooLargeError';
  }
}

/** A caller's mistake: bad options, a malformed message, a batch from another spool. Never retried. */
export class SpoolInvalidArgumentError extends SpoolError {
  constructor(message: string) {
    super('EDGEBRIDGE_SPOOL_INVALID_ARGUMENT', message);
    this.name = 'SpoolInvalidArgumentError';
  }
}

/** Any other storage failure (I/O error, unexpected SQLite error); the cause is attached. */
export class SpoolStorageError extends SpoolError {
  constructor(message: string, options?: ErrorOptions) {
    super('EDGEBRIDGE_SPOOL_STORAGE', message, options);
    this.name = 'SpoolStorageError';
  }
}
