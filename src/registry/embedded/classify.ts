// Errors of the embedded store as the registry's shared error classes, so that
// the agent treats both back ends alike (retry what is temporary, never retry
// what is wrong). The specific error stays as the cause, with its own code.
import { RegistryRejectedError, RegistryUnavailableError } from '../errors.ts';
import { SelectorError } from '../selectors.ts';
import { isCode } from './atomic-file.ts';
import {
  ConfigFileError,
  InvalidObjectError,
  LockTimeoutError,
  NotFoundError,
  RegistryClosedError,
  StateDirError,
} from './errors.ts';

/** File system errors that may go away by themselves (full disk, I/O error, too many open files). */
const TEMPORARY = ['ENOSPC', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EDQUOT'];

/** The error to throw from a Registry method for `err`, met while doing `what`. */
export function classifyLocalError(err: unknown, what: string): unknown {
  if (err instanceof RegistryClosedError) return err;
  // A config file that never read well may be fixed any moment: temporary, like a lock.
  if (err instanceof LockTimeoutError || err instanceof ConfigFileError) {
    return new RegistryUnavailableError(`${what}: ${err.message}`, { cause: err });
  }
  if (err instanceof StateDirError) {
    // A reader pointed at the wrong place is wrong; a writer's directory can be
    // fixed (remounted, freed, chowned) while it runs, so the agent retries.
    return err.problem === 'missing' || err.problem === 'not-a-state-dir'
      ? new RegistryRejectedError(`${what}: ${err.message}`, 404, { cause: err })
      : new RegistryUnavailableError(`${what}: ${err.message}`, { cause: err });
  }
  if (err instanceof NotFoundError) {
    return new RegistryRejectedError(`${what}: ${err.message}`, 404, { cause: err });
  }
  if (err instanceof InvalidObjectError || err instanceof SelectorError) {
    return new RegistryRejectedError(`${what}: ${err.message}`, 400, { cause: err });
  }
  if (TEMPORARY.some((code) => isCode(err, code))) {
    return new RegistryUnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}
