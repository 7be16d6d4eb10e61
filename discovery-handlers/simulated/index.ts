import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../handler.ts';
import { Wakeup } from '../wakeup.ts';
import { BoundedFileError, readBoundedFile, statBounded } from '../../src/util/bounded-file.ts';
import { parseJsonOrYaml } from '../../src/util/yaml.ts';
import { parseDeviceList, parseSimulatedDetails, type SimulatedDetails } from './details.ts';

const MAX_FILE_BYTES = 8 * 1024 * 1024;

/**
 * Devices from its details and from a file that tests and demos edit at run
 * time; shared, so that several nodes can see the same device. With
 * publishIntervalMs, every listed device publishes samples on its data topic.
 */
export const simulatedHandler: DiscoveryHandler<SimulatedDetails> = {
  name: 'simulated',
  shared: true,
  validate: parseSimulatedDetails,
  discover: poll,
};

async function* poll(
  details: SimulatedDetails,
  ctx: HandlerContext,
): AsyncGenerator<DiscoveredDevice[]> {
  const wakeup = new Wakeup();
  let watcher: FSWatcher | undefined;
  if (details.file !== undefined) {
    const base = path.basename(details.file);
    try {
      // Watch the directory: editors and tests replace the file by renaming over it.
      watcher = watch(path.dirname(details.file), { persistent: false }, (_event, name) => {
        if (name === null || name === base) wakeup.notify();
      });
      watcher.on('error', () => watcher?.close());
    } catch (err) {
      ctx.log.warn(
        { file: details.file, err: (err as Error).message },
        'cannot watch the devices file; polling it',
      );
    }
  }
  let fromFile: DiscoveredDevice[] = [];
  let current: DiscoveredDevice[] = [];
  let seq = 0;
  // Samples for whatever is listed now; the timer never keeps the process alive.
  const sampler =
    details.publishIntervalMs === undefined
      ? undefined
      : setInterval(() => {
          seq += 1;
          const time = new Date().toISOString();
          for (const d of current)
            ctx.publish.data(d.id, JSON.stringify({ device: d.id, seq, time }));
        }, details.publishIntervalMs).unref();
  let lastProblem: string | undefined;
  let readStamp: string | undefined;
  let listed = false;
  try {
    while (!ctx.signal.aborted) {
      let changed = !listed;
      if (details.file !== undefined) {
        // An unchanged file (same inode, size, mtime and ctime) is neither read nor parsed again.
        const stamp = await fileStamp(details.file, ctx.signal);
        if (stamp !== readStamp) {
          const result = await readDeviceFile(details.file, ctx.signal);
          // A rejected file is not read again until it changes either.
          readStamp = stamp;
          if (result.ok) {
            fromFile = result.devices;
            lastProblem = undefined;
            ctx.reportProblem?.(undefined);
            changed = true;
          } else if (result.problem !== lastProblem) {
            // One line and one condition per distinct problem; the last good list stays in force.
            lastProblem = result.problem;
            ctx.log.warn(
              { file: details.file, problem: result.problem },
              'simulated devices file rejected',
            );
            ctx.reportProblem?.(`devices file rejected: ${result.problem}`);
          }
        }
      }
      if (changed) {
        const byId = new Map(details.devices.map((d) => [d.id, d]));
        for (const d of fromFile) byId.set(d.id, d);
        listed = true;
        current = [...byId.values()];
        yield current;
      }
      await wakeup.wait(ctx.intervalSeconds * 1000, ctx.signal);
    }
  } finally {
    clearInterval(sampler);
    watcher?.close();
  }
}

/** Identifies a version of the file without reading it; "missing" if it does not exist. */
async function fileStamp(file: string, signal: AbortSignal): Promise<string> {
  try {
    const info = await statBounded(file, { signal });
    return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
  } catch (err) {
    // A stat that did not return in time: read again (and fail in the reader, with a reason).
    return err instanceof BoundedFileError ? `unknown:${Date.now()}` : 'missing';
  }
}

type FileResult = { ok: true; devices: DiscoveredDevice[] } | { ok: false; problem: string };

async function readDeviceFile(file: string, signal: AbortSignal): Promise<FileResult> {
  let text: string;
  try {
    text = (await readBoundedFile(file, { maxBytes: MAX_FILE_BYTES, signal })).toString('utf8');
  } catch (err) {
    signal.throwIfAborted();
    // A missing file means no devices from it (yet).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, devices: [] };
    return { ok: false, problem: (err as Error).message };
  }
  try {
    const doc: unknown =
      text.trim() === ''
        ? []
        : parseJsonOrYaml(text, { maxAliasCount: 100, file: path.basename(file) });
    const list =
      doc !== null && typeof doc === 'object' && !Array.isArray(doc) && 'devices' in doc
        ? doc.devices
        : doc;
    return { ok: true, devices: parseDeviceList(list, path.basename(file)) };
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  }
}
