// The test suite's entry point: starts the supervisor that owns the run's one
// control plane, runs every test file with node's test runner, then stops every
// peer it started. Arguments, if any, replace the default file globs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Supervisor } from './harness/supervisor.ts';

const root = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(tmpdir(), 'edgebridge-test-run-'));
const supervisor = await Supervisor.listen(
  path.join(dir, 'supervisor.sock'),
  path.join(dir, 'control-plane'),
);

const files = process.argv.slice(2);
const child = spawn(
  process.execPath,
  [
    '--test',
    // A test that leaks a peer would otherwise keep its process alive; exiting
    // runs the harness's exit hooks, which kill every peer by PID.
    '--test-force-exit',
    // Most tests wait on peers rather than on the CPU.
    `--test-concurrency=${process.env.EDGEBRIDGE_TEST_CONCURRENCY ?? '3'}`,
    ...(files.length > 0
      ? files
      : [
          'test/unit/**/*.test.ts',
          'test/peers/**/*.test.ts',
          'test/integration/**/*.test.ts',
          'test/security/**/*.test.ts',
        ]),
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      EDGEBRIDGE_TEST_RUN_DIR: dir,
      EDGEBRIDGE_TEST_SUPERVISOR: supervisor.socket,
    },
  },
);

const stopChild = (sig: NodeJS.Signals): void => {
  child.kill(sig);
};
process.on('SIGINT', stopChild);
process.on('SIGTERM', stopChild);

const code = await new Promise<number>((resolve) => {
  child.on('exit', (status, signal) => resolve(status ?? (signal !== null ? 1 : 0)));
});
await supervisor.close();
if (code === 0 && process.env.EDGEBRIDGE_KEEP_TEST_DIR === undefined) {
  rmSync(dir, { recursive: true, force: true });
} else {
  process.stderr.write(`test run directory kept: ${dir}\n`);
}
// Exit rather than wait for the event loop to drain: a peer that something
// leaked would keep it alive forever; exiting kills it (processes.ts).
process.exit(code);
