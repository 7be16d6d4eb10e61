// Device -> Discovery -> spec.uplink, for the uplink's selection. Behind a
// small interface so that selection is testable without a registry. The
// registry-backed directory follows Discoveries by watch and reads the
// Discovery from the Device's name (`<discovery>-<hash>`), so a device seen
// for the first time needs no lookup and no cache can be stale.
import type { Logger } from 'pino';
import { discoveryPart, discoveryPartOf } from '../api/names.ts';
import type { Discovery } from '../api/types.ts';
import type { Registry } from '../registry/registry.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';

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

/** A directory over the registry's Discoveries, followed by watch. */
export class RegistryDeviceDirectory implements DeviceDirectory {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #limiter = new LogLimiter();
  readonly #stop = new AbortController();
  /** `<namespace>/<discoveryPart>` -> its spec.uplink. */
  #uplinks = new Map<string, UplinkSpec>();
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

  uplinkOf(namespace: string, device: string): UplinkSpec | undefined {
    const discovery = discoveryPartOf(device);
    return discovery === undefined ? undefined : this.#uplinks.get(`${namespace}/${discovery}`);
  }

  async close(): Promise<void> {
    this.#stop.abort(new Error('device directory closed'));
    await this.#watching;
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
        this.#limiter.log(
          this.#log,
          'warn',
          'watch',
          '',
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
      out.set(
        `${d.metadata.namespace ?? 'default'}/${discoveryPart(d.metadata.name)}`,
        d.spec.uplink,
      );
    }
  }
  return out;
}
