import { isatty } from 'node:tty';
import { runExecPlugin, type ExecConfig, type ExecCredentialStatus } from './exec-plugin.ts';

/** Without a terminal, a plugin that has not answered in this long is killed. */
export const EXEC_TIMEOUT_MS = 60_000;
/** With one, a person may be typing a password or approving a login. */
export const EXEC_INTERACTIVE_TIMEOUT_MS = 5 * 60_000;

export interface ExecCredentialsOptions {
  /** Overrides both defaults above. */
  timeoutMs?: number;
}

/**
 * An exec plugin's credential, kept until its expirationTimestamp or until the
 * API server refuses it (a 401), then fetched again; concurrent requests share
 * one run of the plugin.
 */
export class ExecCredentials {
  readonly #config: ExecConfig;
  readonly #timeoutMs: number | undefined;
  #current: ExecCredentialStatus | undefined;
  #running: Promise<ExecCredentialStatus> | undefined;

  constructor(config: ExecConfig, opts: ExecCredentialsOptions = {}) {
    this.#config = config;
    this.#timeoutMs = opts.timeoutMs;
  }

  /** The cached credential if it has not expired, else the plugin's next answer. */
  get(signal?: AbortSignal): Promise<ExecCredentialStatus> {
    const cur = this.#current;
    if (cur !== undefined && (cur.expiresAt === undefined || Date.now() < cur.expiresAt))
      return Promise.resolve(cur);
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    // One caller giving up must not cancel the run the others wait for.
    return signal === undefined ? this.#running : abandonable(this.#running, signal);
  }

  /** The API server refused `used`: the next get() runs the plugin, unless another caller already has. */
  invalidate(used: ExecCredentialStatus): void {
    if (this.#current === used) this.#current = undefined;
  }

  async #run(): Promise<ExecCredentialStatus> {
    const stdinIsTty = isatty(0);
    const interactive = this.#config.interactiveMode !== 'Never' && stdinIsTty;
    const timeoutMs =
      this.#timeoutMs ?? (interactive ? EXEC_INTERACTIVE_TIMEOUT_MS : EXEC_TIMEOUT_MS);
    const cred = await runExecPlugin(this.#config, { timeoutMs, stdinIsTty });
    this.#current = cred;
    return cred;
  }
}

/** `work`'s result, or the signal's reason as soon as it aborts; the listener is removed either way. */
function abandonable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
