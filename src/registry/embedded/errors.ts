// Errors of the embedded registry, one class per failure, each with a stable code.

/** The config file cannot be used at all (unreadable, too big, not YAML); the last good set stays. */
export class ConfigFileError extends Error {
  readonly code = 'EDGEBRIDGE_CONFIG_FILE';
  readonly file: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`${file}: ${reason}`, options);
    this.name = 'ConfigFileError';
    this.file = file;
  }
}

/** One document of the config file is not a valid object; it is skipped, the others load. */
export class ConfigDocumentError extends Error {
  readonly code = 'EDGEBRIDGE_CONFIG_DOCUMENT';
  readonly file: string;
  /** 1-based position of the document in the file. */
  readonly document: number;
  constructor(file: string, document: number, what: string, reason: string) {
    super(`${file}: document ${document}${what === '' ? '' : ` (${what})`}: ${reason}`);
    this.name = 'ConfigDocumentError';
    this.file = file;
    this.document = document;
  }
}

/** A name or namespace that cannot be stored (not a DNS name; it would also be a path). */
export class InvalidObjectError extends Error {
  readonly code = 'EDGEBRIDGE_INVALID_OBJECT';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidObjectError';
  }
}

/** The object does not exist (e.g. the status of a Discovery that is not in the config file). */
export class NotFoundError extends Error {
  readonly code = 'EDGEBRIDGE_NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** Another process held an object's lock for longer than we wait; retryable. */
export class LockTimeoutError extends Error {
  readonly code = 'EDGEBRIDGE_LOCK_TIMEOUT';
  readonly lockFile: string;
  constructor(lockFile: string, waitedMs: number) {
    super(`timed out after ${waitedMs} ms waiting for the lock ${lockFile}`);
    this.name = 'LockTimeoutError';
    this.lockFile = lockFile;
  }
}

/** Work asked of a registry after close(). */
export class RegistryClosedError extends Error {
  readonly code = 'EDGEBRIDGE_REGISTRY_CLOSED';
  constructor() {
    super('the registry is closed');
    this.name = 'RegistryClosedError';
  }
}

/** What is wrong with a state directory. */
export type StateDirProblem =
  'missing' | 'not-a-state-dir' | 'not-a-directory' | 'read-only' | 'not-writable' | 'full';

/** The state directory cannot be used as it is; the message names it and what to do. */
export class StateDirError extends Error {
  readonly code = 'EDGEBRIDGE_STATE_DIR';
  readonly dir: string;
  readonly problem: StateDirProblem;
  constructor(dir: string, problem: StateDirProblem, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StateDirError';
    this.dir = dir;
    this.problem = problem;
  }
}
