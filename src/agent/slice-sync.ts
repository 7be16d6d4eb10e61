import type { Logger } from 'pino';
import type { Condition, DeviceSlice, Discovery, SliceDevice } from '../api/types.ts';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import { systemClock, type Clock, type ClockTimer } from '../reconcile/clock.ts';
import { RegistryUnavailableError, isRetryable } from '../registry/errors.ts';
import type { SliceStore } from '../registry/registry.ts';
import type { AdaptiveLimit } from '../util/adaptive-limit.ts';
import { Backoff } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { setCondition, type ConditionInput } from './conditions.ts';
import type { NodeSlices } from './node-slices.ts';
import { layoutSlices } from './slice-layout.ts';
import { sliceName } from '../api/names.ts';

/**
 * Passes are at least this far apart: the first change after a quiet spell is
 * written at once, and what follows within this time waits and goes as one write.
 */
export const COALESCE_MS = 200;
/**
 * Once the registry answers again, a write waiting out its backoff is retried
 * within this much (at random): a fleet whose link came back does not write
 * all at once.
 */
export const RETURN_JITTER_MS = 2_000;

export interface SliceSyncOptions {
  discovery: Discovery;
  shared: boolean;
  node: string;
  store: SliceStore;
  /** The node's stored slices (the agent's watch). */
  slices: NodeSlices;
  /** The uid of this node's Node object, when known (an owner of the slices). */
  nodeUid: () => string | undefined;
  /** Shared by every Discovery of the agent: how many registry writes may be in flight. */
  writeLimit: AdaptiveLimit;
  /** How long a device may be unseen before it leaves this node's slice. */
  graceSeconds: number;
  log: Logger;
  onError: (kind: 'retryable' | 'terminal') => void;
  onCount: (devices: number) => void;
  /** Default the system's; tests pass a fake one. */
  clock?: Clock;
  /** A number in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

interface Wanted {
  device: SliceDevice;
  /** When the device dropped out of the handler's list (ms); undefined while it is listed. */
  missingSince: number | undefined;
}

/** A device as a slice lists it: no empty optional fields, so that equal devices compare equal. */
function sliceDeviceOf(d: DiscoveredDevice): SliceDevice {
  return {
    id: d.id,
    properties: d.properties,
    ...(d.labels !== undefined && Object.keys(d.labels).length > 0 ? { labels: d.labels } : {}),
    ...(d.deviceNodes !== undefined && d.deviceNodes.length > 0
      ? { deviceNodes: d.deviceNodes }
      : {}),
    ...(d.mounts !== undefined && d.mounts.length > 0 ? { mounts: d.mounts } : {}),
  };
}

/** Whether resource version `a` is later than `b` (both etcd revisions, or per-object counters). */
function later(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) > BigInt(b);
}

/**
 * Keeps this node's DeviceSlices of one Discovery equal to what the handler
 * lists (a device unseen for less than the grace period stays) and to the
 * node's conditions. It reconciles on state: each pass compares with the
 * slices the store holds (the agent's watch), so a failed write, or a slice
 * deleted or edited by hand, is corrected by the next pass; a pass that finds
 * nothing to change writes nothing.
 */
export class SliceSync {
  readonly #limiter = new LogLimiter();
  readonly #opts: SliceSyncOptions;
  readonly #key: string;
  readonly #graceMs: number;
  readonly #wanted = new Map<string, Wanted>();
  #conditions: Condition[] = [];
  /**
   * Slices this sync wrote (null: deleted) that the watch may not show yet;
   * each entry stands in for the watch's copy until the watch catches up.
   */
  readonly #written = new Map<string, DeviceSlice | null>();
  readonly #backoff: Backoff;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #unsubscribe: () => void;
  /** The coalescing delay before a pass. */
  #soonTimer: ClockTimer | undefined;
  /** When #soonTimer fires (clock ms). */
  #soonAt = Infinity;
  /** Whether the handler has listed devices yet. */
  #listed = false;
  /** A later pass: a retry, or the end of a grace period. */
  #timer: ClockTimer | undefined;
  /** Whether #timer is a retry of failed writes. */
  #retrying = false;
  /** When the last pass started (clock ms). */
  #lastStart = -Infinity;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(opts: SliceSyncOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#backoff = new Backoff({ random: this.#random });
    this.#graceMs = opts.graceSeconds * 1000;
    this.#key = `${opts.discovery.metadata.namespace ?? 'default'}/${opts.discovery.metadata.name}`;
    this.#unsubscribe = opts.slices.subscribe(this.#key, () => this.#soon());
    // What is stored and not yet listed again starts its grace period now, so
    // that a restart removes nothing that is still there.
    const now = this.#clock.now();
    for (const slice of this.#stored()) {
      for (const device of slice.spec.devices ?? [])
        if (!this.#wanted.has(device.id))
          this.#wanted.set(device.id, { device, missingSince: now });
      const first = sliceName(opts.discovery.metadata.name, opts.node, 0);
      if (slice.metadata.name === first && slice.spec.conditions !== undefined)
        this.#conditions = [...slice.spec.conditions];
    }
    opts.onCount(this.#wanted.size);
  }

  /** Takes the handler's complete current list; written at once, or with what follows within COALESCE_MS of the last pass. */
  observe(devices: DiscoveredDevice[]): void {
    const now = this.#clock.now();
    const listed = new Set<string>();
    for (const d of devices) {
      listed.add(d.id);
      this.#wanted.set(d.id, { device: sliceDeviceOf(d), missingSince: undefined });
    }
    for (const [id, w] of this.#wanted) if (!listed.has(id)) w.missingSince ??= now;
    this.#listed = true;
    this.#soon();
  }

  /** Sets one of the node's conditions for the Discovery (carried on its first slice). */
  setCondition(next: ConditionInput): void {
    const updated = setCondition(this.#conditions, next);
    if (updated === undefined) return;
    this.#conditions = updated.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    // Set as the handler starts: its first list, if it comes soon, goes in the same write.
    this.#soon(this.#listed ? 0 : COALESCE_MS);
  }

  /** The node's current condition of a type. */
  condition(type: string): Condition | undefined {
    return this.#conditions.find((c) => c.type === type);
  }

  /** Runs a pass now (the resync): what the watch says is taken as the truth again. */
  reconcile(): void {
    this.#written.clear();
    this.#start();
  }

  /**
   * The registry answers again: failed writes waiting out their backoff are
   * retried within RETURN_JITTER_MS rather than at the end of it.
   */
  retrySoon(): void {
    if (this.#closed || !this.#retrying) return;
    this.#backoff.reset();
    this.#schedule(this.#random() * RETURN_JITTER_MS, true);
  }

  /**
   * Deletes this node's slices of the Discovery (it went away, or no longer
   * selects this node). Rejects with a RegistryUnavailableError if some could
   * not be deleted for now; calling it again retries them.
   */
  async removeAll(): Promise<void> {
    await this.close();
    const names = this.#stored().map((s) => s.metadata.name);
    let left = 0;
    // Not through the write limit: a node has few slices per Discovery, and a
    // slow removal must not hold up the other Discoveries' writes.
    await Promise.all(
      names.map(async (name) => {
        try {
          await this.#delete(name, false);
        } catch (err) {
          if (this.#failed(err, name, 'delete')) left++;
        }
      }),
    );
    this.#opts.onCount(0);
    if (left > 0)
      throw new RegistryUnavailableError(
        `${left} of ${names.length} slices could not be deleted yet`,
      );
    if (names.length > 0)
      this.#opts.log.info({ slices: names.length }, "deleted this node's slices of the discovery");
  }

  /** Stops reconciling; waits for a pass under way. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    this.#clearTimer();
    await this.#running;
  }

  /** This node's slices of the Discovery as stored: the watch's, with this sync's later writes over them. */
  #stored(): DeviceSlice[] {
    const namespace = this.#opts.discovery.metadata.namespace ?? 'default';
    const watched = new Map(this.#opts.slices.of(this.#key).map((s) => [s.metadata.name, s]));
    for (const [name, mine] of this.#written) {
      if (mine === null) {
        if (watched.has(name)) watched.delete(name);
        else this.#written.delete(name);
        continue;
      }
      // Once the watch has shown this write (or a later version), it knows better.
      const seen = this.#opts.slices.seenVersion(namespace, name);
      const version = mine.metadata.resourceVersion;
      if (seen === version || later(seen, version)) this.#written.delete(name);
      else watched.set(name, mine);
    }
    return [...watched.values()];
  }

  /**
   * A pass as soon as COALESCE_MS have passed since the last one began (at
   * once after a quiet spell) and `atLeastMs` from now, unless one is due
   * sooner. Never synchronous: lists given in one go still make one pass.
   */
  #soon(atLeastMs = 0): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const at = Math.max(this.#lastStart + COALESCE_MS, now + atLeastMs);
    if (this.#soonTimer !== undefined) {
      if (this.#soonAt <= at) return;
      this.#soonTimer.cancel();
    }
    this.#soonAt = at;
    this.#soonTimer = this.#clock.after(at - now, () => {
      this.#soonTimer = undefined;
      this.#start();
    });
  }

  #start(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#clearTimer();
    this.#lastStart = this.#clock.now();
    this.#running = this.#pass().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.#start();
      }
    });
  }

  async #pass(): Promise<void> {
    const { discovery, node, log } = this.#opts;
    const now = this.#clock.now();
    let nextExpiry = Infinity;
    for (const [id, w] of this.#wanted) {
      if (w.missingSince === undefined) continue;
      const expiry = w.missingSince + this.#graceMs;
      if (expiry <= now) this.#wanted.delete(id);
      else nextExpiry = Math.min(nextExpiry, expiry);
    }
    this.#opts.onCount(this.#wanted.size);
    const layout = layoutSlices({
      namespace: discovery.metadata.namespace ?? 'default',
      discovery: { name: discovery.metadata.name, uid: discovery.metadata.uid ?? '' },
      node,
      nodeUid: this.#opts.nodeUid(),
      shared: this.#opts.shared,
      handler: discovery.spec.handler.name,
      devices: [...this.#wanted.values()].map((w) => w.device),
      conditions: this.#conditions,
      stored: this.#stored(),
    });
    let retry = false;
    const writes = [
      ...layout.put.map((slice) => async () => {
        const name = slice.metadata.name;
        try {
          const stored = await this.#opts.writeLimit.run(
            () => this.#opts.store.putSlice(slice),
            outcomeOf,
          );
          this.#written.set(name, stored);
          log.info({ slice: name, devices: slice.spec.deviceCount }, 'slice written');
        } catch (err) {
          retry ||= this.#failed(err, name, 'write');
        }
      }),
      ...layout.delete.map((name) => async () => {
        try {
          await this.#delete(name);
          log.info({ slice: name }, 'slice deleted');
        } catch (err) {
          retry ||= this.#failed(err, name, 'delete');
        }
      }),
    ];
    await Promise.all(writes.map((w) => w()));
    if (this.#closed) return;
    if (retry) {
      this.#schedule(this.#backoff.nextDelay(), true);
    } else {
      this.#backoff.reset();
      if (nextExpiry !== Infinity) this.#schedule(nextExpiry - now + 10);
    }
  }

  async #delete(name: string, limited = true): Promise<void> {
    const namespace = this.#opts.discovery.metadata.namespace ?? 'default';
    const remove = () => this.#opts.store.deleteSlice(namespace, name);
    await (limited ? this.#opts.writeLimit.run(remove, outcomeOf) : remove());
    this.#written.set(name, null);
  }

  /** Logs and counts a failed write; true if it should be retried. */
  #failed(err: unknown, slice: string, what: string): boolean {
    const retryable = isRetryable(err);
    this.#opts.onError(retryable ? 'retryable' : 'terminal');
    // A registry that is down fails every write: one line for all of them.
    this.#limiter.log(
      this.#opts.log,
      'warn',
      `slice-${what}`,
      retryable ? '' : slice,
      { slice, err: (err as Error).message, retryable },
      `slice ${what} failed`,
    );
    return retryable;
  }

  #schedule(ms: number, retrying = false): void {
    this.#clearTimer();
    this.#retrying = retrying;
    this.#timer = this.#clock.after(ms, () => {
      this.#timer = undefined;
      this.#retrying = false;
      this.#start();
    });
  }

  #clearTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#retrying = false;
    this.#soonTimer?.cancel();
    this.#soonTimer = undefined;
  }
}

/** Whether a failed write says the registry is overloaded (so the fleet should slow down). */
function outcomeOf(err: unknown): 'overloaded' | 'failed' {
  return err instanceof RegistryUnavailableError ? 'overloaded' : 'failed';
}
