// Canary secrets: every password and token the harness and the tests make
// carries one marker, so that after the whole suite test/run.ts can search
// every log under the run directory for it (a leak anywhere, by any process).
import { randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, type Dirent } from 'node:fs';
import path from 'node:path';

/** In every canary secret, and in nothing else a test or program writes. */
export const CANARY_MARKER = 'c4nary7e1d';

/** A fresh secret for `role` (letters, digits and dashes: fine in a token file, a URL or YAML). */
export function canary(role: string): string {
  return `${role}-${CANARY_MARKER}-${randomBytes(8).toString('hex')}`;
}

/** Where a canary was found: the file and its line, never the secret. */
export interface CanaryHit {
  file: string;
  line: number;
}

/** Every `*.log` file under `dir`, searched for the marker; streamed, so cheap on big logs. */
export async function findCanaries(dir: string): Promise<CanaryHit[]> {
  const marker = Buffer.from(CANARY_MARKER);
  const hits: CanaryHit[] = [];
  for (const file of logFiles(dir)) {
    let line = 1;
    // The marker may straddle two chunks: keep its length minus one of the previous chunk.
    let carry = Buffer.alloc(0);
    for await (const chunk of createReadStream(file)) {
      const buf = Buffer.concat([carry, chunk as Buffer]);
      let from = 0;
      for (let at = buf.indexOf(marker); at !== -1; at = buf.indexOf(marker, at + 1)) {
        line += count(buf, from, at);
        from = at;
        hits.push({ file, line });
      }
      const keep = Math.min(buf.length, marker.length - 1);
      line += count(buf, from, buf.length - keep);
      carry = buf.subarray(buf.length - keep);
    }
  }
  return hits;
}

function count(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a, from); i !== -1 && i < to; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

function logFiles(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return logFiles(p);
    return e.isFile() && e.name.endsWith('.log') ? [p] : [];
  });
}
