import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { LABEL_DISCOVERY, type Discovery } from '../api/types.ts';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import { RegistryUnavailableError, isRetryable } from '../registry/errors.ts';
import type { DeviceStore, DeviceView } from '../registry/registry.ts';
import type { AdaptiveLimit } from '../util/adaptive-limit.ts';
import { Backoff } from '../util/backoff.ts';
import { canonicalView, storedViewOf, viewOf } from './device-view.ts';
import { LogLimiter } from '../util/log-limiter.ts';

export interface DeviceSyncOptions {
  discovery: Discovery;
  shared: boolean;
  node: string;
  store: DeviceStore;
  /** Shared by every Discovery of the agent: how many registry writes may be in flight. */
  writeLimit: AdaptiveLimit;
  /** How long a device may be unseen before this node's entry is removed. */
  graceSeconds: number;
  log: Logger;
  onError: (kind: 'retryable' | 'terminal') => void;
  onCount: (devices: number) => void;
}

/** Most writes one pass queues at once; the agent's AdaptiveLimit decides how many are in flight. */
const MAX_QUEUED = 16;

/** Runs `tasks`, at most `limit` queued at a time; stops starting new ones once `stopped()` is true. */
async function runLimited(
  tasks: (() => Promise<void>)[],
  limit: number,
  stopped: () => boolean,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length && !stopped()) {
      const task = tasks[next++];
      if (task !== undefined) await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** Whether a failed write says the registry is overloaded (so the fleet should slow down). */
function outcomeOf(err: unknown): 'overloaded' | 'failed' {
  return err instanceof RegistryUnavailableError ? 'overloaded' : 'failed';
}

interface Wanted {
  view: DeviceView;
  canonical: string;
  /** When the device dropped out of the handler's list (ms); undefined while it is listed. */
  missingSince: number | undefined;
}

/**
 * Keeps this node's entries in the Devices of one Discovery equal to what the
 * handler lists, allowing a device to be unseen for the grace period. It
 * reconciles on state: every pass compares what is wanted with what the store
 * was last known to hold, so a failed or missed write is corrected on the
 * next pass; a pass that finds nothing to change writes nothing.
 */
export class DeviceSync {
  readonly #limiter = new LogLimiter();
  readonly #opts: DeviceSyncOptions;
  readonly #graceMs: number;
  readonly #wanted = new Map<string, Wanted>();
  /** Canonical view of what the store holds for this node, by Device name. */
  readonly #stored = new Map<string, string>();
  /** Views the store refused as wrong; not retried until the view changes. */
  readonly #rejected = new Map<string, string>();
  readonly #backoff = new Backoff();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(opts: DeviceSyncOptions) {
    this.#opts = opts;
    this.#graceMs = opts.graceSeconds * 1000;
  }

  /**
   * Reads what the store holds for this node. Devices held but not yet listed
   * by the handler start their grace period now, so a restart deletes nothing
   * that is still there.
   */
  async load(): Promise<void> {
    const { discovery, node, store } = this.#opts;
    const devices = await store.listDevices({
      namespace: discovery.metadata.namespace ?? 'default',
      labelSelector: `${LABEL_DISCOVERY}=${discovery.metadata.name}`,
    });
    const now = Date.now();
    for (const device of devices) {
      const view = storedViewOf(device, node);
      if (view === undefined || view.spec.discovery !== discovery.metadata.name) continue;
      const canonical = canonicalView(view);
      this.#stored.set(view.name, canonical);
      this.#wanted.set(view.name, { view, canonical, missingSince: now });
    }
    this.#opts.onCount(this.#wanted.size);
  }

  /** Takes the handler's complete current list. */
  observe(devices: DiscoveredDevice[]): void {
    const { discovery, shared, node } = this.#opts;
    const now = Date.now();
    const listed = new Set<string>();
    for (const device of devices) {
      const view = viewOf(discovery, device, shared, node);
      listed.add(view.name);
      this.#wanted.set(view.name, {
        view,
        canonical: canonicalView(view),
        missingSince: undefined,
      });
    }
    for (const [name, wanted] of this.#wanted) {
      if (!listed.has(name)) wanted.missingSince ??= now;
    }
    this.reconcile();
  }

  /** Runs a reconcile pass now, or right after the one under way. */
  reconcile(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#clearTimer();
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.reconcile();
      }
    });
  }

  /**
   * Removes this node's entry from every Device of the Discovery (the
   * Discovery went away). Rejects with a RegistryUnavailableError if some
   * could not be removed for now; calling it again retries only those.
   */
  async removeAll(): Promise<void> {
    await this.close();
    const { node, store, log } = this.#opts;
    const names = new Set([...this.#stored.keys(), ...this.#wanted.keys()]);
    this.#wanted.clear();
    for (const name of names) this.#stored.set(name, this.#stored.get(name) ?? '');
    let left = 0;
    const removals = [...names].map((name) => async () => {
      try {
        await this.#opts.writeLimit.run(
          () => store.removeDeviceNode(this.#namespace(), name, node),
          outcomeOf,
        );
        this.#stored.delete(name);
      } catch (err) {
        if (this.#failed(err, name, 'remove', undefined)) left++;
        else this.#stored.delete(name);
      }
    });
    await runLimited(removals, MAX_QUEUED, () => false);
    this.#opts.onCount(this.#stored.size);
    if (left > 0)
      throw new RegistryUnavailableError(
        `${left} of ${names.size} devices could not leave this node yet`,
      );
    log.info({ devices: names.size }, 'this node left the devices of the discovery');
  }

  /** Stops reconciling; waits for a pass under way. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    await this.#running;
  }

  async #pass(): Promise<void> {
    const { store, node, log } = this.#opts;
    const now = Date.now();
    let retry = false;
    let nextExpiry = Infinity;
    const writes: { name: string; run: () => Promise<void> }[] = [];
    for (const [name, wanted] of this.#wanted) {
      if (wanted.missingSince !== undefined) {
        const expiry = wanted.missingSince + this.#graceMs;
        if (expiry <= now) {
          this.#wanted.delete(name);
          continue;
        }
        nextExpiry = Math.min(nextExpiry, expiry);
      }
      const canonical = wanted.canonical;
      if (this.#stored.get(name) === canonical || this.#rejected.get(name) === canonical) continue;
      const known = this.#stored.has(name);
      writes.push({
        name,
        run: async () => {
          try {
            await this.#opts.writeLimit.run(
              () => store.applyDevice(wanted.view, { known }),
              outcomeOf,
            );
            this.#stored.set(name, canonical);
            this.#rejected.delete(name);
            log.info({ device: name, id: wanted.view.spec.id }, 'device registered');
          } catch (err) {
            retry ||= this.#failed(err, name, 'apply', canonical);
          }
        },
      });
    }
    for (const name of this.#stored.keys()) {
      if (this.#wanted.has(name)) continue;
      writes.push({
        name,
        run: async () => {
          try {
            await this.#opts.writeLimit.run(
              () => store.removeDeviceNode(this.#namespace(), name, node),
              outcomeOf,
            );
            this.#stored.delete(name);
            log.info({ device: name }, 'device gone from this node');
          } catch (err) {
            retry ||= this.#failed(err, name, 'remove', undefined);
          }
        },
      });
    }
    await runLimited(this.#spread(writes), MAX_QUEUED, () => this.#closed);
    this.#opts.onCount(this.#wanted.size);
    if (this.#closed) return;
    if (retry) {
      this.#schedule(this.#backoff.nextDelay());
    } else {
      this.#backoff.reset();
      if (nextExpiry !== Infinity) this.#schedule(nextExpiry - now + 10);
    }
  }

  /**
   * Orders writes so that the nodes of a fleet, which list the same shared
   * devices, do not write the same Device at the same moment (each such
   * collision is a conflict the API server retries at full cost): every node
   * walks the same ring of devices (sorted by a hash of the name), starting at
   * a place of its own (a hash of the node). Nodes moving at a similar pace
   * then stay apart for the whole walk.
   */
  #spread(writes: { name: string; run: () => Promise<void> }[]): (() => Promise<void>)[] {
    const hash = (text: string): string => createHash('sha1').update(text).digest('hex');
    const ring = writes
      .map((w) => ({ k: hash(w.name), run: w.run }))
      .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
      .map((w) => w.run);
    const start = Number.parseInt(hash(this.#opts.node).slice(0, 8), 16) % Math.max(1, ring.length);
    return [...ring.slice(start), ...ring.slice(0, start)];
  }

  /** Logs and counts a failed write; true if it should be retried. */
  #failed(err: unknown, device: string, what: string, canonical: string | undefined): boolean {
    const retryable = isRetryable(err);
    this.#opts.onError(retryable ? 'retryable' : 'terminal');
    // A registry that is down fails every device's write: one line for all of them.
    this.#limiter.log(
      this.#opts.log,
      'warn',
      `device-${what}`,
      retryable ? '' : device,
      { device, err: (err as Error).message, retryable },
      `device ${what} failed`,
    );
    if (!retryable && canonical !== undefined) this.#rejected.set(device, canonical);
    return retryable;
  }

  #schedule(ms: number): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => this.reconcile(), Math.max(0, ms));
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #namespace(): string {
    return this.#opts.discovery.metadata.namespace ?? 'default';
  }
}
