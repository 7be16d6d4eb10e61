import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { UplinkStats } from '../../src/uplink/index.ts';

const CHILD = path.join(import.meta.dirname, 'uplink-child.ts');

/** The real uplink in a child process (a direct child, stopped by its PID). */
export interface UplinkProcess {
  readonly pid: number;
  /** Resolves with the child's figures (spool, sender, source) and RSS. */
  stats(): Promise<UplinkStats & { rss: number }>;
  /** SIGKILL, as a crash; waits for exit. */
  kill(): Promise<void>;
  /** SIGTERM (clean close); waits for exit. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the uplink child with `config` (the uplink configuration document) and waits until it is ready. */
export async function startUplinkProcess(opts: {
  config: Record<string, unknown>;
  stateDir: string;
  logFile: string;
  node?: string;
  /** Arguments for node itself (e.g. the image's V8 flags). */
  nodeArgs?: string[];
}): Promise<UplinkProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), CHILD, JSON.stringify(opts.config), opts.stateDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EDGEBRIDGE_NODE: opts.node ?? 'node-1' },
    },
  );
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  child.stderr?.pipe(log);
  const exited = once(child, 'exit');
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  if (child.stdout === null) throw new Error('uplink child has no stdout');
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  let ready: () => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    void exited.then(() =>
      reject(new Error(`uplink child exited before ready; log ${opts.logFile}`)),
    );
  });
  lines.on('line', (line) => {
    if (line === 'ready') ready();
    else waiting.shift()?.(line);
  });
  await started;
  const pid = child.pid ?? 0;
  return {
    pid,
    async stats() {
      const line = new Promise<string>((resolve) => waiting.push(resolve));
      child.kill('SIGUSR2');
      return JSON.parse(await line) as UplinkStats & { rss: number };
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      process.off('exit', kill);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      process.off('exit', kill);
    },
  };
}
