// Every file the agent reads because a user named it (device files, config,
// credentials, sysfs attributes) is read here: a regular file only, at most
// maxBytes, and within a deadline, so that no such file can exhaust memory or
// hold a libuv threadpool thread (and with it all of the agent's file I/O).
//
// Why not O_NOFOLLOW: Kubernetes mounts ConfigMaps, Secrets and projected
// tokens as symlinks (..data/), so a symlink must be followed; what counts is
// what the opened descriptor is, which fstat checks.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

/** How long one read (or stat) may take before it is abandoned. */
export const FILE_DEADLINE_MS = 5_000;
/** A sysfs attribute is at most a page; its st_size (4096) says nothing about its content. */
export const SYSFS_ATTRIBUTE_BYTES = 4096;
/**
 * Abandoned operations that have still not returned hold threadpool threads
 * (4 by default); past this many, reads fail at once instead of taking more.
 */
const MAX_STUCK = 2;
const CHUNK_BYTES = 64 * 1024;
// O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking a
// thread; O_NOCTTY: a terminal never becomes the agent's controlling terminal.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

export type BoundedFileCode =
  'EDGEBRIDGE_FILE_NOT_REGULAR' | 'EDGEBRIDGE_FILE_TOO_LARGE' | 'EDGEBRIDGE_FILE_TIMEOUT';

/** A file refused by this module. System errors (ENOENT, EACCES...) pass through unchanged. */
export class BoundedFileError extends Error {
  readonly code: BoundedFileCode;
  readonly file: string;
  /** The message without the file name, e.g. "is a FIFO, not a regular file". */
  readonly reason: string;
  constructor(code: BoundedFileCode, file: string, reason: string) {
    super(`${file} ${reason}`);
    this.name = 'BoundedFileError';
    this.code = code;
    this.file = file;
    this.reason = reason;
  }
}

export interface BoundedReadOptions {
  /** More bytes than this is an EDGEBRIDGE_FILE_TOO_LARGE error; enforced while reading. */
  maxBytes: number;
  /** Abandon after this long (EDGEBRIDGE_FILE_TIMEOUT); default FILE_DEADLINE_MS. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Reads a regular file of at most maxBytes; refuses FIFOs, devices, sockets and directories without reading them. */
export function readBoundedFile(file: string, opts: BoundedReadOptions): Promise<Buffer> {
  return withDeadline(file, opts.timeoutMs, opts.signal, async (job) => {
    // Refuse before opening: opening some devices has effects (a watchdog starts, a tape rewinds).
    checkRegular(file, await stat(file));
    job.throwIfAbandoned();
    const handle = await open(file, OPEN_FLAGS);
    try {
      job.throwIfAbandoned();
      // The path may have been replaced between stat and open: the descriptor is what counts.
      checkRegular(file, await handle.stat());
      return await readCapped(file, handle, opts.maxBytes, job);
    } finally {
      await handle.close();
    }
  });
}

/** stat() within a deadline, for noticing that a file changed without reading it. */
export function statBounded(
  file: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Stats> {
  return withDeadline(file, opts.timeoutMs, opts.signal, () => stat(file));
}

/**
 * The same checks, synchronously, for start-up reads (configuration, kubeconfig)
 * and callers that cannot wait. It has no deadline: it runs on the main thread,
 * and with FIFOs and devices refused only a hung file system can stall it.
 */
export function readBoundedFileSync(file: string, opts: { maxBytes: number }): Buffer {
  checkRegular(file, statSync(file));
  const fd = openSync(file, OPEN_FLAGS);
  try {
    checkRegular(file, fstatSync(fd));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, opts.maxBytes - total + 1));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > opts.maxBytes) throw tooLarge(file, opts.maxBytes);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

function checkRegular(file: string, info: Stats): void {
  if (info.isFile()) return;
  const kind = info.isDirectory()
    ? 'a directory'
    : info.isFIFO()
      ? 'a FIFO'
      : info.isCharacterDevice()
        ? 'a character device'
        : info.isBlockDevice()
          ? 'a block device'
          : info.isSocket()
            ? 'a socket'
            : 'not a file';
  throw new BoundedFileError('EDGEBRIDGE_FILE_NOT_REGULAR', file, `is ${kind}, not a regular file`);
}

function tooLarge(file: string, maxBytes: number): BoundedFileError {
  return new BoundedFileError(
    'EDGEBRIDGE_FILE_TOO_LARGE',
    file,
    `is larger than ${maxBytes} bytes; not read further`,
  );
}

interface Job {
  throwIfAbandoned(): void;
}

/** Reads until EOF, never holding more than maxBytes + 1 bytes: st_size is not trusted (sysfs, procfs, growing files). */
async function readCapped(
  file: string,
  handle: FileHandle,
  maxBytes: number,
  job: Job,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, maxBytes - total + 1));
    const { bytesRead } = await handle.read(buf, 0, buf.length, null);
    job.throwIfAbandoned();
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > maxBytes) throw tooLarge(file, maxBytes);
    chunks.push(buf.subarray(0, bytesRead));
  }
  return Buffer.concat(chunks, total);
}

/** Paths whose abandoned operation has not returned yet. */
const stuck = new Map<string, number>();
let stuckTotal = 0;

/**
 * Runs `work` and settles within `timeoutMs`. Work that cannot be cancelled is
 * abandoned: the caller gets an error, the work stops at its next step and
 * closes what it opened; while it has not returned, the same path (or any path,
 * past MAX_STUCK) fails at once rather than queue behind it.
 */
function withDeadline<T>(
  file: string,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  work: (job: Job) => Promise<T>,
): Promise<T> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  if (stuck.has(file) || stuckTotal >= MAX_STUCK) {
    return Promise.reject(
      new BoundedFileError(
        'EDGEBRIDGE_FILE_TIMEOUT',
        file,
        stuck.has(file)
          ? 'was not read: an earlier read of it has not returned'
          : 'was not read: earlier file reads have not returned',
      ),
    );
  }
  const ms = timeoutMs ?? FILE_DEADLINE_MS;
  let abandoned = false;
  const job: Job = {
    throwIfAbandoned: () => {
      if (abandoned) throw new Error('abandoned');
    },
  };
  return new Promise<T>((resolve, reject) => {
    const settle = (fn: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const giveUp = (err: Error): void => {
      abandoned = true;
      stuck.set(file, (stuck.get(file) ?? 0) + 1);
      stuckTotal += 1;
      settle(() => reject(err));
    };
    const onAbort = (): void => giveUp(signal?.reason as Error);
    const timer = setTimeout(
      () =>
        giveUp(
          new BoundedFileError(
            'EDGEBRIDGE_FILE_TIMEOUT',
            file,
            `was not read within ${ms} ms; abandoned`,
          ),
        ),
      ms,
    );
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    work(job).then(
      (value) => {
        if (abandoned) release(file);
        else settle(() => resolve(value));
      },
      (err: unknown) => {
        if (abandoned) release(file);
        else settle(() => reject(err instanceof Error ? err : new Error(String(err))));
      },
    );
  });
}

function release(file: string): void {
  const n = (stuck.get(file) ?? 1) - 1;
  if (n === 0) stuck.delete(file);
  else stuck.set(file, n);
  stuckTotal -= 1;
}
