// Unix socket files in the kubelet's directories: what is at a path, and how
// grpc-js names it.
import { lstat, unlink } from 'node:fs/promises';
import { NotASocketError } from './errors.ts';

/** The socket's inode (it changes when its server restarts), or undefined when the path is empty. */
export async function socketInode(file: string): Promise<number | undefined> {
  try {
    const st = await lstat(file);
    if (!st.isSocket()) throw new NotASocketError(file);
    return st.ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Removes a socket left by an earlier run; refuses to remove anything else. */
export async function removeStaleSocket(file: string): Promise<void> {
  if ((await socketInode(file)) === undefined) return;
  await unlink(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

export function grpcAddress(file: string): string {
  return `unix://${file}`;
}
