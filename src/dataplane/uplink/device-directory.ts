// Device -> Discovery -> spec.uplink, for the uplink's selection. Behind a
// small interface so that selection is testable without a registry; the
// registry-backed directory follows Discoveries by watch and looks Devices up
// by namespace, cached.
import type { Logger } from 'pino';
import { LABEL_DISCOVERY, type Discovery } from '../../api/types.ts';
import type { Registry } from '../../registry/registry.ts';
import { Backoff, sleep } from '../../util/backoff.ts';

export interface UplinkSpec {
  enabled: boolean;
  priority?: number;
  ttlSeconds?: number;
}

export interface DeviceDirectory {
  /** The uplink settings of the Discovery that owns the Device; undefined if unknown or unset. */
  uplinkOf(
    namespace: string,
    device: string,
  ): UplinkSpec | undefined | Promise<UplinkSpec | undefined>;
}

/** How long a namespace's Device list is trusted before a miss lists it again. */
const DEVICE_LIST_MAX_AGE_MS = 5000;

/** A directory over the registry: Discoveries by watch, Devices listed per namespace on a miss. */
export class RegistryDeviceDirectory implements DeviceDirectory {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  /** `<namespace>/<discovery>` -> its spec.uplink. */
  #uplinks = new Map<string, UplinkSpec>();
  /** Per namespace: Device name -> Discovery name, when listed, and a listing under way. */
  readonly #devices = new Map<
    string,
    { byDevice: Map<string, string>; at: number; listing?: Promise<void> }
  >();
  #watching: Promise<void> | undefined;

  constructor(registry: Registry, log: Logger) {
    this.#registry = registry;
    this.#log = log;
  }

  /** Starts following Discoveries; resolves once the first set is known (or the watch failed once). */
  start(): Promise<void> {
    let first: () => void = () => undefined;
    const known = new Promise<void>((resolve) => (first = resolve));
    this.#watching ??= this.#watch(() => first());
    return known;
  }

  uplinkOf(
    namespace: string,
    device: string,
  ): UplinkSpec | undefined | Promise<UplinkSpec | undefined> {
    const entry = this.#devices.get(namespace);
    const discovery = entry?.byDevice.get(device);
    if (discovery !== undefined) return this.#uplinks.get(`${namespace}/${discovery}`);
    if (entry !== undefined && Date.now() - entry.at < DEVICE_LIST_MAX_AGE_MS && !entry.listing) {
      return undefined;
    }
    return this.#list(namespace).then(() => {
      const d = this.#devices.get(namespace)?.byDevice.get(device);
      return d === undefined ? undefined : this.#uplinks.get(`${namespace}/${d}`);
    });
  }

  async close(): Promise<void> {
    this.#stop.abort(new Error('device directory closed'));
    await this.#watching;
  }

  #list(namespace: string): Promise<void> {
    const entry = this.#devices.get(namespace) ?? { byDevice: new Map<string, string>(), at: 0 };
    this.#devices.set(namespace, entry);
    entry.listing ??= this.#registry
      .listDevices({ namespace })
      .then(
        (devices) => {
          entry.byDevice = new Map(
            devices.map((d) => [
              d.metadata.name,
              d.metadata.labels?.[LABEL_DISCOVERY] ?? d.spec.discovery,
            ]),
          );
        },
        (err: unknown) => {
          this.#log.warn(
            { namespace, err: (err as Error).message },
            'uplink: listing Devices failed; their data is not sent until a later lookup succeeds',
          );
        },
      )
      .finally(() => {
        entry.at = Date.now();
        delete entry.listing;
      });
    return entry.listing;
  }

  async #watch(onFirst: () => void): Promise<void> {
    const backoff = new Backoff();
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        await this.#registry.watchDiscoveries((discoveries) => {
          this.#uplinks = uplinksOf(discoveries);
          onFirst();
        }, signal);
      } catch (err) {
        onFirst();
        if (signal.aborted) return;
        const delay = backoff.nextDelay();
        this.#log.warn(
          { err: (err as Error).message, retryInMs: delay },
          'uplink: discovery watch failed',
        );
        await sleep(delay, signal).catch(() => undefined);
      }
    }
  }
}

function uplinksOf(discoveries: readonly Discovery[]): Map<string, UplinkSpec> {
  const out = new Map<string, UplinkSpec>();
  for (const d of discoveries) {
    if (d.spec.uplink !== undefined) {
      out.set(`${d.metadata.namespace ?? 'default'}/${d.metadata.name}`, d.spec.uplink);
    }
  }
  return out;
}
