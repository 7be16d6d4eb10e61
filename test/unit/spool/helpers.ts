// Helpers for the spool tests: scratch directories, message builders, a real
// small tmpfs for disk-full, and raw byte surgery on the spool's files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Spool, SpoolInput, SpoolMessage } from '../../../src/spool/index.ts';

/** A fresh directory, removed by `removeAll`. */
export class Scratch {
  readonly #dirs: string[] = [];

  dir(prefix = 'spool'): string {
    const dir = mkdtempSync(path.join(tmpdir(), `edgebridge-${prefix}-`));
    this.#dirs.push(dir);
    return dir;
  }

  removeAll(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** A message for device `key`, numbered `n` (id `${key}-${n}` unless given). */
export function message(key: string, n: number, extra: Partial<SpoolInput> = {}): SpoolInput {
  return {
    id: `${key}-${n}`,
    key,
    topic: `edgebridge/v1/default/${key}/data`,
    payload: Buffer.from(`payload ${key} ${n}`),
    timestamp: 1_700_000_000_000 + n,
    ...extra,
  };
}

/** Reads and acknowledges everything the spool will hand out now. */
export async function drain(spool: Spool, max = 100): Promise<SpoolMessage[]> {
  const all: SpoolMessage[] = [];
  for (;;) {
    const batch = await spool.read(max);
    if (batch.messages.length === 0) return all;
    all.push(...batch.messages);
    await spool.ack(batch);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `p` has settled by the time the event loop has turned once. */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

/** A real tmpfs of `bytes` mounted on a fresh directory (needs root). */
export function mountTmpfs(scratch: Scratch, bytes: number): { dir: string; unmount: () => void } {
  const dir = scratch.dir('tmpfs');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', [dir]);
    },
  };
}

/** Files the spool keeps in `dir`, reserve excluded. */
function spoolFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.reserve'))
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/**
 * Flips one byte in the middle of every copy of `marker` in the spool's files,
 * by raw writes, as a failing disk would. Returns how many copies were hit.
 */
export function corruptMarker(dir: string, marker: Buffer): number {
  let hits = 0;
  for (const file of spoolFiles(dir)) {
    const bytes = readFileSync(file);
    let changed = false;
    for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
      const i = at + Math.floor(marker.length / 2);
      bytes[i] = (bytes[i] ?? 0) ^ 0xff;
      changed = true;
      hits += 1;
    }
    if (changed) writeFileSync(file, bytes);
  }
  return hits;
}

/** Overwrites every spool file with garbage of the same length. */
export function garbleFiles(dir: string): number {
  const files = spoolFiles(dir);
  let seed = 12345;
  for (const file of files) {
    const bytes = Buffer.alloc(statSync(file).size);
    for (let i = 0; i < bytes.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      bytes[i] = seed >> 16;
    }
    writeFileSync(file, bytes);
  }
  return files.length;
}
