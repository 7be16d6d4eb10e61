// One kind of object as JSON files at <root>/<namespace>/<name>.json, the
// object an API server would hold: where a file is, reading one, and listing
// them. The embedded registry's Devices, DeviceSlices and Discovery records.
import path from 'node:path';
import type { Logger } from 'pino';
import { listDir, readObjectFile } from './atomic-file.ts';
import { isNamespace } from './meta.ts';

/** Files read at once by a list, so that thousands of objects do not open thousands of files. */
const READ_CONCURRENCY = 64;

interface Named {
  metadata: { name: string; namespace?: string };
}

/** contract: the files of one kind under `root`; locking and writing stay with the store. */
export class ObjectDir<T extends Named> {
  readonly #root: string;
  readonly #kind: string;
  readonly #is: (value: unknown) => value is T;
  readonly #log: Logger;

  constructor(root: string, kind: string, is: (value: unknown) => value is T, log: Logger) {
    this.#root = root;
    this.#kind = kind;
    this.#is = is;
    this.#log = log;
  }

  file(namespace: string, name: string): string {
    return path.join(this.#root, namespace, `${name}.json`);
  }

  /** The object in `file`; undefined if there is none, or (logged) if it is not one. */
  read(file: string): Promise<T | undefined> {
    return readObjectFile(file, this.#is, this.#kind, this.#log);
  }

  /** The names of the namespace's object files (hidden files and other entries left out). */
  async names(namespace: string): Promise<string[]> {
    return (await listDir(path.join(this.#root, namespace)))
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => f.slice(0, -'.json'.length));
  }

  /** The namespaces that have a directory here. */
  async namespaces(): Promise<string[]> {
    return (await listDir(this.#root)).filter(isNamespace);
  }

  /**
   * Every object (in one namespace if given), in no particular order, with its
   * namespace set. A file whose object names another place is skipped, logged.
   */
  async list(namespace?: string): Promise<T[]> {
    const namespaces = namespace === undefined ? await this.namespaces() : [namespace];
    const out: T[] = [];
    for (const ns of namespaces) {
      if (!isNamespace(ns)) continue;
      const names = await this.names(ns);
      for (let i = 0; i < names.length; i += READ_CONCURRENCY) {
        const batch = names.slice(i, i + READ_CONCURRENCY);
        const read = await Promise.all(batch.map((n) => this.read(this.file(ns, n))));
        for (const [j, object] of read.entries()) {
          if (object === undefined) continue;
          const { name, namespace: itsNamespace = ns } = object.metadata;
          if (name !== batch[j] || itsNamespace !== ns) {
            this.#log.warn(
              { file: this.file(ns, batch[j] ?? '') },
              `ignoring a misplaced ${this.#kind} file`,
            );
            continue;
          }
          out.push({ ...object, metadata: { ...object.metadata, namespace: ns } });
        }
      }
    }
    return out;
  }
}
