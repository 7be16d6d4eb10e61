// Notices a kubelet (re)start: its kubelet.sock appears anew. A
// restarting kubelet also clears the directory, so this is when plugins must
// listen again and register. fs.watch can miss events (and does not work on
// every file system), so a slow poll backs it up.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { socketIdentity } from './unix-socket.ts';

export const KUBELET_SOCKET = 'kubelet.sock';
const POLL_MS = 5_000;
const SETTLE_MS = 100;
const NOT_A_SOCKET = 'not a socket';

export class KubeletWatch {
  readonly socket: string;
  readonly #onChange: () => void;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #identity: string | undefined;
  #closed = false;

  /** `onChange` is called (never synchronously) whenever kubelet.sock in `dir` changes. */
  constructor(dir: string, onChange: () => void, log: Logger) {
    this.socket = path.join(dir, KUBELET_SOCKET);
    this.#onChange = onChange;
    this.#log = log;
  }

  /** The kubelet socket last seen (socketIdentity); undefined while there is none or the path is not a socket. */
  get identity(): string | undefined {
    return this.#identity === NOT_A_SOCKET ? undefined : this.#identity;
  }

  async start(): Promise<void> {
    this.#identity = await this.#read();
    try {
      this.#watcher = watch(path.dirname(this.socket), (_event, file) => {
        if (file === null || file === KUBELET_SOCKET) this.#schedule();
      });
      this.#watcher.on('error', (err) => {
        this.#log.warn({ err }, 'watching the device-plugins directory failed; polling only');
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (err) {
      this.#log.warn(
        { err, dir: path.dirname(this.socket) },
        'cannot watch the device-plugins directory; polling only',
      );
    }
    this.#poll = setInterval(() => this.#schedule(), POLL_MS);
    this.#poll.unref();
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
  }

  #schedule(): void {
    if (this.#closed || this.#settle !== undefined) return;
    // Events come in bursts (unlink, create); look once they settled.
    this.#settle = setTimeout(() => {
      this.#settle = undefined;
      void this.#check();
    }, SETTLE_MS);
    this.#settle.unref();
  }

  async #check(): Promise<void> {
    const now = await this.#read();
    if (this.#closed || now === this.#identity) return;
    this.#identity = now;
    if (now !== NOT_A_SOCKET)
      this.#log.info(now === undefined ? 'kubelet socket gone' : 'kubelet socket appeared');
    this.#onChange();
  }

  async #read(): Promise<string | undefined> {
    try {
      return await socketIdentity(this.socket);
    } catch (err) {
      // Something that is not a socket: as good as no kubelet, said once per change.
      if (this.#identity !== NOT_A_SOCKET)
        this.#log.error({ err }, 'the kubelet socket path is not a socket');
      return NOT_A_SOCKET;
    }
  }
}
