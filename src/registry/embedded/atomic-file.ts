// Durable file writes: a reader sees the old or the new content, never a mix,
// and after a crash the file holds one of them.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { readBoundedFile } from '../../util/bounded-file.ts';
import { LogLimiter } from '../../util/log-limiter.ts';

/** A stored object is a few kilobytes; a file far larger is not one of ours. */
const MAX_STATE_FILE_BYTES = 16 * 1024 * 1024;

/** Whether err is a Node.js system error with this code (ENOENT, EEXIST, ...). */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

/** fsync a directory so that a rename or unlink in it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
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
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
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

/** The file's text, or undefined if it does not exist. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return (await readBoundedFile(file, { maxBytes: MAX_STATE_FILE_BYTES })).toString('utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** A damaged file is read again on every query and reconcile: one line per file a minute. */
const badFiles = new LogLimiter();

/**
 * The object in a JSON file if it passes `guard`; undefined if the file is
 * missing, and also (with one warning naming `kind`) if it is not such an
 * object, so that the next write replaces it. Files are written atomically, so
 * a bad one means damage or tampering, not a torn write.
 */
export async function readObjectFile<T>(
  file: string,
  guard: (value: unknown) => value is T,
  kind: string,
  log: { warn(fields: object, msg: string): void },
): Promise<T | undefined> {
  const text = await readTextIfExists(file);
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
