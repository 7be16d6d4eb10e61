// A lock per stored object, shared by every process that uses the same state
// directory (two agents in a test, the CLI), so that read-modify-write of one
// object never loses another process's update. The lock is a file created with
// O_EXCL; a lock whose holder died (same host, pid gone) or that is older than
// `staleMs` is broken, by renaming it aside and checking that what was moved is
// the lock judged stale, so that two breakers cannot both remove a live lock.
import { randomBytes, randomUUID } from 'node:crypto';
import { link, open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDir, isCode, readTextIfExists } from './atomic-file.ts';
import { LockTimeoutError } from './errors.ts';

export interface LockOptions {
  /** Give up (LockTimeoutError) after waiting this long. */
  timeoutMs?: number;
  /** A lock older than this is stale whoever holds it (holders keep it for milliseconds). */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_STALE_MS = 10_000;
const BACKOFF_INITIAL_MS = 5;
const BACKOFF_MULTIPLIER = 2;
const BACKOFF_CAP_MS = 100;
const BACKOFF_JITTER = 0.5;
/** A holder record is a few dozen bytes; anything longer is not one. */
const MAX_HOLDER_BYTES = 4096;

interface Holder {
  pid: number;
  host: string;
  token: string;
}

// Callers in this process queue here first, so a process never spins on its own lock.
const queues = new Map<string, Promise<void>>();

/** The lock file of an object stored at `file` ("x.json" -> "x.lock", beside it). */
export function lockFileFor(file: string): string {
  return file.replace(/(\.json)?$/, '.lock');
}

/** Runs fn while holding the lock file `lockFile` (in this process and against other processes). */
export async function withObjectLock<T>(
  lockFile: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const previous = queues.get(lockFile) ?? Promise.resolve();
  const turn = Promise.withResolvers<undefined>();
  const tail = previous.then(() => turn.promise);
  queues.set(lockFile, tail);
  await previous;
  try {
    const token = await acquire(lockFile, options);
    try {
      return await fn();
    } finally {
      await release(lockFile, token);
    }
  } finally {
    turn.resolve(undefined);
    if (queues.get(lockFile) === tail) queues.delete(lockFile);
  }
}

async function acquire(lockFile: string, options: LockOptions): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  // randomUUID draws on a cached pool: cheaper per lock than randomBytes.
  const token = randomUUID();
  const holder: Holder = { pid: process.pid, host: hostname(), token };
  const started = Date.now();
  let delay = BACKOFF_INITIAL_MS;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx', 0o644);
      try {
        await handle.writeFile(JSON.stringify(holder));
      } finally {
        await handle.close();
      }
      return token;
    } catch (err) {
      if (isCode(err, 'ENOENT')) {
        await ensureDir(path.dirname(lockFile));
        continue;
      }
      if (!isCode(err, 'EEXIST')) throw err;
    }
    if (await breakIfStale(lockFile, staleMs)) continue;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(lockFile, waited);
    await sleep(delay * (1 - BACKOFF_JITTER + Math.random() * 2 * BACKOFF_JITTER));
    delay = Math.min(delay * BACKOFF_MULTIPLIER, BACKOFF_CAP_MS);
  }
}

async function release(lockFile: string, token: string): Promise<void> {
  // Remove only our own lock: if ours was broken as stale, the file is now someone else's.
  const holder = await readHolder(lockFile);
  if (holder?.token === token) await unlink(lockFile).catch(() => undefined);
}

async function readHolder(lockFile: string): Promise<Holder | undefined> {
  try {
    // Never a blocking read: a FIFO or a huge file planted as a lock is judged by its age alone.
    const text = await readTextIfExists(lockFile, MAX_HOLDER_BYTES);
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { pid, host, token } = parsed as Record<string, unknown>;
    if (typeof pid !== 'number' || typeof host !== 'string' || typeof token !== 'string') {
      return undefined;
    }
    return { pid, host, token };
  } catch {
    // Missing, or just created and not yet written: judged by its age alone.
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isCode(err, 'ESRCH');
  }
}

/** True if the lock is gone or was stale and has been removed (try again now). */
async function breakIfStale(lockFile: string, staleMs: number): Promise<boolean> {
  let before;
  try {
    before = await stat(lockFile);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    throw err;
  }
  const holder = await readHolder(lockFile);
  const dead = holder !== undefined && holder.host === hostname() && !isAlive(holder.pid);
  if (!dead && Date.now() - before.mtimeMs < staleMs) return false;

  const aside = `${lockFile}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(lockFile, aside);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    throw err;
  }
  const moved = await stat(aside);
  if (moved.ino !== before.ino || moved.dev !== before.dev) {
    // Another breaker got there first and a new holder took the lock: put it back.
    await link(aside, lockFile).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return true;
}
