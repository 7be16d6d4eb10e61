import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

let ownRunDir: string | undefined;

/**
 * The directory for this test run's peers (logs, data, sockets). The runner
 * (test/run.ts) shares one through EDGEBRIDGE_TEST_RUN_DIR; a test file run on
 * its own gets a private one.
 */
export function runDir(): string {
  const shared = process.env.EDGEBRIDGE_TEST_RUN_DIR;
  if (shared !== undefined && shared !== '') {
    mkdirSync(shared, { recursive: true });
    return shared;
  }
  ownRunDir ??= mkdtempSync(path.join(tmpdir(), 'edgebridge-test-'));
  return ownRunDir;
}

/** A fresh directory under the run directory, named after `prefix`. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(path.join(runDir(), `${prefix}-`));
}
