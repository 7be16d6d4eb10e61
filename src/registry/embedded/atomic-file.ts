// Durable file writes: a reader sees the old or the new content, never a mix,
// and after a crash the file holds one of them.
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { BoundedFileError, readBoundedFile } from '../../util/bounded-file.ts';
import { LogLimiter } from '../../util/log-limiter.ts';

/** Whether err is a Node.js system error with this code (ENOENT, EEXIST, ...). */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Per directory: the fsync under way, and the one queued after it that later callers join. */
const dirSyncs = new Map<string, { running: Promise<void>; next: Promise<void> | undefined }>();

/**
 * fsync a directory so that a rename or unlink in it survives a power cut.
 * Callers in the same directory share fsyncs (a group commit): a caller
 * waits for an fsync that starts after its call, never for one already under
 * way, so a burst of writes costs about two directory fsyncs, not one each.
 */
function syncDir(dir: string): Promise<void> {
  const current = dirSyncs.get(dir);
  if (current === undefined) {
    const entry = { running: fsyncDir(dir), next: undefined as Promise<void> | undefined };
    dirSyncs.set(dir, entry);
    const done = (): void => {
      if (entry.next === undefined) dirSyncs.delete(dir);
    };
    entry.running.then(done, done);
    return entry.running;
  }
  current.next ??= current.running
    .catch(() => undefined)
    .then(() => {
      dirSyncs.delete(dir);
      return syncDir(dir);
    });
  return current.next;
}

/** mkdir -p, then fsync the parent of the first directory made so the new entry is durable too. */
export async function ensureDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first !== undefined) await syncDir(path.dirname(first));
}

/** Writes a temp file beside `file`, fsyncs it, renames it over `file`, and fsyncs the directory. */
export async function writeFileAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  await ensureDir(dir);
  // randomUUID draws on a cached pool: cheaper per write than randomBytes.
  const temp = path.join(dir, `.${path.basename(file)}.${randomUUID().slice(-12)}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** Removes `file` durably; false if it was not there. */
export async function removeFile(file: string): Promise<boolean> {
  try {
    await unlink(file);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return false;
    throw err;
  }
  await syncDir(path.dirname(file));
  return true;
}

/** Far more than any stored object (etcd refuses objects over 1.5 MiB); a guard against reading a stray file whole. */
export const MAX_OBJECT_BYTES = 2 * 1024 * 1024;

/** A stored object's path names something that is not a regular file this process can read. */
export class UnusableFileError extends Error {
  readonly code = 'EDGEBRIDGE_UNUSABLE_FILE';
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`${file}: ${reason}`, options);
    this.name = 'UnusableFileError';
    this.file = file;
    this.reason = reason;
  }
}

/** Why reading failed, as an UnusableFileError, if it is about the entry itself (not the file system). */
function unusable(file: string, err: unknown): UnusableFileError | undefined {
  if (err instanceof UnusableFileError) return err;
  if (err instanceof BoundedFileError)
    return new UnusableFileError(file, err.reason, { cause: err });
  if (isCode(err, 'EACCES') || isCode(err, 'EPERM'))
    return new UnusableFileError(file, 'cannot be read (permission denied)', { cause: err });
  if (isCode(err, 'EISDIR'))
    return new UnusableFileError(file, 'is not a regular file', { cause: err });
  return undefined;
}

/**
 * The text of a regular file of at most `maxBytes`, or undefined if it does
 * not exist. Throws an UnusableFileError for a directory, FIFO, socket,
 * device, symlink, an unreadable or an oversized file (checked while reading).
 */
export async function readTextIfExists(
  file: string,
  maxBytes = MAX_OBJECT_BYTES,
): Promise<string | undefined> {
  try {
    // The state directory holds only what edgebridge wrote: a symlink in it is stray.
    if ((await lstat(file)).isSymbolicLink())
      throw new UnusableFileError(file, 'is a symbolic link');
    return (await readBoundedFile(file, { maxBytes })).toString('utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw unusable(file, err) ?? err;
  }
}

/** A damaged file is read again on every query and reconcile: one line per file a minute. */
const badFiles = new LogLimiter();

/**
 * The object in a JSON file if it passes `guard`; undefined if the file is
 * missing, and also (with one warning naming `kind`) if it is not such an
 * object or not a readable regular file, so that the next write replaces it
 * and a listing goes on. Files are written atomically, so a bad one means
 * damage or tampering, not a torn write.
 */
export async function readObjectFile<T>(
  file: string,
  guard: (value: unknown) => value is T,
  kind: string,
  log: { warn(fields: object, msg: string): void },
): Promise<T | undefined> {
  let text;
  try {
    text = await readTextIfExists(file);
  } catch (err) {
    if (!(err instanceof UnusableFileError)) throw err;
    log.warn({ file, reason: err.reason }, `ignoring a ${kind} file that cannot be used`);
    return undefined;
  }
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (guard(value)) return value;
  } catch {
    // Reported below.
  }
  const limited = badFiles.take(kind, file);
  if (limited.log) {
    const counted = limited.suppressed > 0 ? { suppressed: limited.suppressed } : {};
    log.warn({ file, ...counted }, `ignoring a ${kind} file that is not a ${kind}`);
  }
  return undefined;
}

/** The names in a directory; none if it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return [];
    throw err;
  }
}
