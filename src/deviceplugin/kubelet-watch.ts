// Notices a kubelet (re)start: its kubelet.sock appears with a new inode. A
// restarting kubelet also clears the directory, so this is when plugins must
// listen again and register. fs.watch can miss events (and does not work on
// every file system), so a slow poll backs it up.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { socketInode } from './unix-socket.ts';

export const KUBELET_SOCKET = 'kubelet.sock';
const POLL_MS = 5_000;
const SETTLE_MS = 100;

export class KubeletWatch {
  readonly socket: string;
  readonly #onChange: () => void;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #inode: number | undefined;
  #closed = false;

  /** `onChange` is called (never synchronously) whenever kubelet.sock in `dir` changes. */
  constructor(dir: string, onChange: () => void, log: Logger) {
    this.socket = path.join(dir, KUBELET_SOCKET);
    this.#onChange = onChange;
    this.#log = log;
  }

  /** The inode of the kubelet socket last seen; undefined while there is none, -1 if the path is not a socket. */
  get inode(): number | undefined {
    return this.#inode;
  }

  async start(): Promise<void> {
    this.#inode = await this.#read();
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
    const ino = await this.#read();
    if (this.#closed || ino === this.#inode) return;
    this.#inode = ino;
    if (ino !== -1)
      this.#log.info(ino === undefined ? 'kubelet socket gone' : 'kubelet socket appeared');
    this.#onChange();
  }

  async #read(): Promise<number | undefined> {
    try {
      return await socketInode(this.socket);
    } catch (err) {
      // Something that is not a socket: as good as no kubelet, said once per change.
      if (this.#inode !== -1) this.#log.error({ err }, 'the kubelet socket path is not a socket');
      return -1;
    }
  }
}
