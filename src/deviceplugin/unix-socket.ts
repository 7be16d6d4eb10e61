// Unix socket files in the kubelet's directories: what is at a path, and how
// grpc-js names it.
import { lstat, unlink } from 'node:fs/promises';
import { NotASocketError } from './errors.ts';

/**
 * Which socket is at `file`: its inode and change time (a socket made again
 * may get the inode of the one removed before it), or undefined when the path
 * is empty.
 */
export async function socketIdentity(file: string): Promise<string | undefined> {
  try {
    const st = await lstat(file, { bigint: true });
    if (!st.isSocket()) throw new NotASocketError(file);
    return `${st.ino}:${st.ctimeNs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes a socket left by an earlier run; refuses to remove anything else. */
export async function removeStaleSocket(file: string): Promise<void> {
  if ((await socketIdentity(file)) === undefined) return;
  await unlink(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

export function grpcAddress(file: string): string {
  return `unix://${file}`;
}
