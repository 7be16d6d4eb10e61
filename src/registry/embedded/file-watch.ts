// Tells when a file may have changed: fs.watch on its directory (so that an
// editor's write-and-rename is seen too), debounced, plus a periodic poll as a
// safety net for file systems where fs.watch says nothing.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export interface FileWatchOptions {
  /** Poll this often whatever fs.watch says. */
  intervalMs: number;
  /** Wait this long after the last fs event, so a file being written is read once, whole. */
  debounceMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** Calls onTrigger (never synchronously) until the signal aborts; every timer and listener is then gone. */
export function watchFile(file: string, options: FileWatchOptions, onTrigger: () => void): void {
  const { signal, log } = options;
  if (signal.aborted) return;
  const base = path.basename(file);
  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;

  const poll = setInterval(onTrigger, options.intervalMs);
  poll.unref();

  const onEvent = (_event: string, name: string | Buffer | null): void => {
    if (name !== null && name.toString() !== base) return;
    clearTimeout(debounce);
    debounce = setTimeout(onTrigger, options.debounceMs);
    debounce.unref();
  };
  try {
    watcher = watch(path.dirname(file), { persistent: false }, onEvent);
    watcher.on('error', (err) => {
      // The directory went away or cannot be watched: the poll carries on alone.
      log.debug({ err, file }, 'fs.watch failed; polling only');
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    log.debug({ err, file }, 'cannot fs.watch; polling only');
  }

  signal.addEventListener(
    'abort',
    () => {
      clearInterval(poll);
      clearTimeout(debounce);
      watcher?.close();
      watcher = undefined;
    },
    { once: true },
  );
}
