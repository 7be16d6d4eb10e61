import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';

/** Raised when a peer program is not installed; names the setup command that installs it. */
export class MissingPeerError extends Error {
  readonly code = 'EDGEBRIDGE_TEST_PEER_MISSING';
  constructor(program: string, hint = 'run scripts/test.sh, which installs every test peer') {
    super(`test peer '${program}' is not installed: ${hint}`);
    this.name = 'MissingPeerError';
  }
}

/** Fails with MissingPeerError unless `program` is on PATH (or is an existing path). */
export function requireProgram(program: string): string {
  if (program.includes('/')) {
    const r = spawnSync('test', ['-x', program]);
    if (r.status !== 0) throw new MissingPeerError(program);
    return program;
  }
  const r = spawnSync('sh', ['-c', `command -v "${program}"`], { encoding: 'utf8' });
  const found = r.stdout.trim();
  if (r.status !== 0 || found === '') throw new MissingPeerError(program);
  return found;
}

export interface PeerProcessOptions {
  /** Short name used in messages and for the log file. */
  name: string;
  command: string;
  args: string[];
  /** Directory that receives `<name>.log` with the program's stdout and stderr. */
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const running = new Set<PeerProcess>();

// The machine's init does not reap orphans, so every peer is a direct child and
// is killed by PID even when the test process exits abruptly.
process.on('exit', () => {
  for (const p of running) p.killNow();
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const p of running) p.killNow();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

/** A peer program started as a direct child of this process, stopped by its PID. */
export class PeerProcess {
  readonly name: string;
  readonly logFile: string;
  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  #exited: Promise<void>;
  #exitCode: number | null = null;
  #exitSignal: NodeJS.Signals | null = null;
  #done = false;

  constructor(opts: PeerProcessOptions) {
    this.name = opts.name;
    this.logFile = path.join(opts.logDir, `${opts.name}.log`);
    this.#log = createWriteStream(this.logFile, { flags: 'a' });
    this.#child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.pipe(this.#log, { end: false });
    this.#child.stderr?.pipe(this.#log, { end: false });
    running.add(this);
    this.#exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.#done) return;
        this.#done = true;
        this.#exitCode = code;
        this.#exitSignal = signal;
        running.delete(this);
        resolve();
      };
      this.#child.once('exit', finish);
      this.#child.once('error', (err) => {
        this.#log.write(`spawn failed: ${err.message}\n`);
        finish(null, null);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#done;
  }

  /** Exit description for error messages, or undefined while the process runs. */
  get exitStatus(): string | undefined {
    if (!this.#done) return undefined;
    return this.#exitSignal !== null
      ? `signal ${this.#exitSignal}`
      : `exit code ${String(this.#exitCode)}`;
  }

  /** The last lines of the program's log, for error messages. */
  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Sends a signal to the process itself (e.g. SIGSTOP/SIGCONT to simulate an outage). */
  signal(sig: NodeJS.Signals): void {
    if (!this.#done) this.#child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.#done) {
      this.#child.kill('SIGCONT');
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    await this.#closeLog();
  }

  /** SIGKILL without waiting; for process exit handlers. */
  killNow(): void {
    if (!this.#done) this.#child.kill('SIGKILL');
  }

  /** Resolves when the process exits. */
  async waitForExit(): Promise<void> {
    await this.#exited;
  }

  /**
   * Polls `check` until it returns a value other than undefined; fails early with the
   * log tail if the process exits, and after `timeoutMs` with `what` in the message.
   */
  async waitUntil<T>(
    what: string,
    check: () => Promise<T | undefined> | T | undefined,
    timeoutMs = 30000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      if (this.#done) {
        throw new Error(
          `${this.name} exited (${String(this.exitStatus)}) before ${what}; log ${this.logFile}:\n${this.tail()}`,
        );
      }
      try {
        const value = await check();
        if (value !== undefined) return value;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
        throw new Error(
          `${this.name}: timed out after ${timeoutMs} ms waiting for ${what}${cause}; log ${this.logFile}:\n${this.tail()}`,
        );
      }
      await sleep(50);
    }
  }

  async #closeLog(): Promise<void> {
    if (this.#log.closed || this.#log.destroyed) return;
    this.#log.end();
    await once(this.#log, 'close').catch(() => undefined);
  }
}
