// What is wrong with a state directory, said in words a user can act on:
// Node reports a read-only file system met by mkdir -p as ENOENT, and a bare
// EACCES or ENOTDIR names neither the directory nor the way out.
import { constants } from 'node:fs';
import { access, lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { clip } from '../../util/quote.ts';
import { isCode } from './atomic-file.ts';
import { StateDirError, type StateDirProblem } from './errors.ts';

/** How much of a path a message repeats. */
const PATH_CHARS = 256;

/** File system error codes that may mean the state directory itself is unusable. */
const SUSPECT = [
  'ENOENT',
  'EEXIST',
  'EROFS',
  'EACCES',
  'EPERM',
  'ENOSPC',
  'EDQUOT',
  'ENOTDIR',
  'EISDIR',
];

const HINT = 'or give --state-dir another directory';

function describe(dir: string, problem: StateDirProblem, where: string, code: string): string {
  const d = clip(dir, PATH_CHARS);
  const w = clip(where, PATH_CHARS);
  const at = where === dir ? '' : ` (at ${w})`;
  switch (problem) {
    case 'missing':
      return `state directory ${d} does not exist: give --state-dir the directory the agent uses`;
    case 'not-a-state-dir':
      return `${d} is not an edgebridge state directory (it has no registry/ directory): give --state-dir the directory the agent uses`;
    case 'not-a-directory':
      return `state directory ${d} cannot be used: ${w} is not a directory; remove it ${HINT}`;
    case 'read-only':
      return `state directory ${d} is on a read-only file system${at}: mount it read-write ${HINT}`;
    case 'not-writable':
      return `state directory ${d} is not writable by this process${at} (${code}): fix its owner or mode ${HINT}`;
    case 'full':
      return `state directory ${d} has no space left${at} (${code}): free space on its file system ${HINT}`;
  }
}

function problemError(
  dir: string,
  problem: StateDirProblem,
  where: string,
  cause: unknown,
): StateDirError {
  const code =
    typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  return new StateDirError(dir, problem, describe(dir, problem, where, code), { cause });
}

/** The nearest existing entry at or above `p`, or the first component that is not a directory. */
async function nearest(p: string): Promise<{ at: string; directory: boolean }> {
  for (let at = p; ; at = path.dirname(at)) {
    try {
      const info = await stat(at);
      return { at, directory: info.isDirectory() };
    } catch (err) {
      if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTDIR')) throw err;
      if (path.dirname(at) === at) return { at, directory: true };
    }
  }
}

/** Why `p` (or the directory it would be made in) cannot be written, or undefined. */
async function writeProblem(dir: string, p: string): Promise<StateDirError | undefined> {
  const { at, directory } = await nearest(p);
  if (!directory) return problemError(dir, 'not-a-directory', at, undefined);
  try {
    await access(at, constants.W_OK);
  } catch (err) {
    if (isCode(err, 'EROFS')) return problemError(dir, 'read-only', at, err);
    if (isCode(err, 'EACCES') || isCode(err, 'EPERM'))
      return problemError(dir, 'not-writable', at, err);
  }
  return undefined;
}

/**
 * A StateDirError saying what is wrong with the state directory `dir`, if
 * `err` (met while using it) comes from the directory being read-only, not
 * writable, full or not a directory; undefined for any other error.
 */
export async function diagnoseStateDir(
  dir: string,
  err: unknown,
): Promise<StateDirError | undefined> {
  if (err instanceof StateDirError) return err;
  if (!SUSPECT.some((code) => isCode(err, code))) return undefined;
  if (isCode(err, 'ENOSPC') || isCode(err, 'EDQUOT')) {
    return problemError(dir, 'full', dir, err);
  }
  try {
    const own = await writeProblem(dir, dir);
    if (own !== undefined) return own;
    // The directory is fine: look at the entry the operation failed on (a read-only
    // mount or an unwritable subdirectory inside it).
    const failed = (err as { path?: unknown }).path;
    if (typeof failed === 'string' && failed.startsWith(dir + path.sep)) {
      // mkdir -p met a file where a directory belongs (EEXIST, ENOTDIR).
      if (isCode(err, 'EEXIST') || isCode(err, 'ENOTDIR')) {
        const { at, directory } = await nearest(failed);
        if (!directory) return problemError(dir, 'not-a-directory', at, err);
      }
      return await writeProblem(dir, path.dirname(failed));
    }
  } catch {
    // The diagnosis itself failed: keep the original error.
  }
  return undefined;
}

/**
 * Throws a StateDirError unless `dir` is a state directory an agent has used
 * (it holds registry/): for readers, who must not take a wrong path for an
 * empty registry.
 */
export async function checkStateDir(dir: string, registryRoot: string): Promise<void> {
  for (const [p, absent] of [
    [dir, 'missing'],
    [registryRoot, 'not-a-state-dir'],
  ] as const) {
    let info;
    try {
      info = await lstat(p).then((l) => (l.isSymbolicLink() ? stat(p) : l));
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw problemError(dir, absent, p, err);
      if (isCode(err, 'ENOTDIR')) throw problemError(dir, 'not-a-directory', dir, err);
      throw err;
    }
    if (!info.isDirectory()) {
      throw problemError(dir, p === dir ? 'not-a-directory' : 'not-a-state-dir', p, undefined);
    }
  }
}
