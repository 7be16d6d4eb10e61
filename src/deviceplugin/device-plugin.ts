// The kubelet device plugin: one extended resource per Device visible on this
// node (`edgebridge.io/<device>`, capacity slots) and one per Discovery
// (`edgebridge.io/<discovery>`, any of its devices), each served on its own
// socket and registered with the kubelet. The agent feeds it with update().
import type { Logger } from 'pino';
import type { Device } from '../api/types.ts';
import { containerResponse, type VisibleDevice } from './allocation.ts';
import { compareUsage, formatClaim, mayUse, preferredIds, type Held } from './claims.ts';
import type { DeviceStore } from './device-store.ts';
import { DevicePluginClosedError, DeviceUnavailableError, UnknownDeviceIdError } from './errors.ts';
import { KubeletWatch } from './kubelet-watch.ts';
import { heldDevices } from './pod-resources.ts';
import { PluginServer, type ResourceSource } from './plugin-server.ts';
import {
  HEALTHY,
  UNHEALTHY,
  type AllocateRequest,
  type AllocateResponse,
  type PluginDevice,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
} from './protos.ts';
import { register } from './registration.ts';
import { resourceName, slotId, socketName } from './resource-names.ts';
import { claimSlot, updateUsage } from './usage-writes.ts';

export type { VisibleDevice } from './allocation.ts';

export const DEFAULT_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';
const DEFAULT_RESYNC_MS = 30_000;
/** A claim no pod holds is kept this long: the kubelet records a pod's devices only after Allocate. */
const DEFAULT_RECLAIM_GRACE_MS = 60_000;

export interface DevicePluginConfig {
  /** The kubelet's device-plugins directory (kubelet.sock and ours). */
  dir: string;
  node: string;
  store: DeviceStore;
  /** The node broker's URL, as pods reach it. */
  brokerUrl: string;
  log: Logger;
  /** Default DEFAULT_POD_RESOURCES_SOCKET. */
  podResourcesSocket?: string;
  /** How often claims are checked against pod-resources and Devices re-read (default 30 s). */
  resyncMs?: number;
  reclaimGraceMs?: number;
}

/** What the agent calls. */
export interface DevicePluginFeed {
  /** The complete list of devices this node sees now. */
  update(devices: readonly VisibleDevice[]): void;
  close(): Promise<void>;
}

/** What a resource's source reads when the kubelet asks. */
interface Offer {
  name: string;
  devices: VisibleDevice[];
  /** Left this node: its list is all Unhealthy until its server closes. */
  gone: boolean;
}

interface Resource extends Offer {
  server: PluginServer;
  /** The kubelet socket (socketIdentity) it was registered with. */
  registeredWith: string | undefined;
}

const key = (d: { namespace: string; name: string }): string => `${d.namespace}/${d.name}`;

export class DevicePlugin implements DevicePluginFeed {
  readonly #cfg: Required<DevicePluginConfig>;
  readonly #log: Logger;
  readonly #kubelet: KubeletWatch;
  readonly #resources = new Map<string, Resource>();
  /** Resources whose socket path is blocked by something else; retried at each resync. */
  readonly #blocked = new Set<string>();
  #visible: VisibleDevice[] = [];
  /** The Devices as last read or written, for slot health. */
  readonly #devices = new Map<string, Device>();
  /** `${device key} ${slot}` -> when this node's claim was first seen held by no pod. */
  readonly #unheldSince = new Map<string, number>();
  readonly #allocatedAt = new Map<string, number>();
  #work: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #podResourcesFailing = false;
  readonly #abort = new AbortController();
  #closed = false;

  private constructor(cfg: DevicePluginConfig) {
    this.#cfg = {
      podResourcesSocket: DEFAULT_POD_RESOURCES_SOCKET,
      resyncMs: DEFAULT_RESYNC_MS,
      reclaimGraceMs: DEFAULT_RECLAIM_GRACE_MS,
      ...cfg,
    };
    this.#log = cfg.log.child({ component: 'device-plugin' });
    this.#kubelet = new KubeletWatch(
      cfg.dir,
      () => this.#schedule(() => this.#kubeletChanged()),
      this.#log,
    );
  }

  /** Starts watching for the kubelet; resources come with the first update(). */
  static async start(cfg: DevicePluginConfig): Promise<DevicePlugin> {
    const plugin = new DevicePlugin(cfg);
    await plugin.#kubelet.start();
    plugin.#timer = setInterval(
      () => plugin.#schedule(() => plugin.#resync()),
      plugin.#cfg.resyncMs,
    );
    plugin.#timer.unref();
    plugin.#log.info(
      { dir: cfg.dir, kubelet: plugin.#kubelet.identity !== undefined },
      'device plugin started',
    );
    return plugin;
  }

  update(devices: readonly VisibleDevice[]): void {
    if (this.#closed) return;
    this.#visible = [...devices];
    this.#schedule(() => this.#apply());
  }

  /** Re-reads Devices, reclaims stale claims and retries failed registrations; resolves when done. */
  resync(): Promise<void> {
    if (this.#closed) return Promise.reject(new DevicePluginClosedError());
    return this.#enqueue(() => this.#resync());
  }

  /** Resolves when the work queued so far is done (for tests and shutdown). */
  idle(): Promise<void> {
    return this.#enqueue(() => Promise.resolve());
  }

  /** Stops every server and removes its socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(new DevicePluginClosedError());
    clearInterval(this.#timer);
    this.#kubelet.close();
    await this.#work;
    await Promise.all([...this.#resources.values()].map((r) => r.server.close()));
    this.#resources.clear();
  }

  /** Runs `job` after the jobs before it; a failed job is logged and does not stop the queue. */
  #enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.#work.then(() => (this.#closed ? undefined : job()));
    this.#work = run.catch((err: unknown) => {
      if (!this.#closed) this.#log.error({ err }, 'device plugin work failed');
    });
    return run;
  }

  /** #enqueue for work nobody waits on (its failure is logged there). */
  #schedule(job: () => Promise<void>): void {
    this.#enqueue(job).catch(() => undefined);
  }

  /** What each resource should offer now: resource name -> devices. */
  #desired(): Map<string, VisibleDevice[]> {
    const out = new Map<string, VisibleDevice[]>();
    const add = (resource: string, d: VisibleDevice) => {
      const list = out.get(resource) ?? [];
      list.push(d);
      out.set(resource, list);
    };
    for (const d of this.#visible) {
      if (d.capacity < 1) continue;
      add(resourceName(d.name), d);
      add(resourceName(d.discovery), d);
    }
    return out;
  }

  async #apply(): Promise<void> {
    const desired = this.#desired();
    await this.#readMissingDevices();
    for (const [name, r] of this.#resources) {
      if (desired.has(name)) continue;
      // Unhealthy first, so that the kubelet stops placing pods before the socket goes.
      r.gone = true;
      r.server.changed();
      this.#resources.delete(name);
      await r.server.close();
      this.#log.info({ resource: name }, 'device plugin resource removed');
    }
    for (const [name, devices] of desired) {
      const r = this.#resources.get(name);
      if (r !== undefined) {
        r.devices = devices;
        r.server.changed();
      } else {
        await this.#open(name, devices);
      }
    }
  }

  async #open(name: string, devices: VisibleDevice[]): Promise<void> {
    const offer: Offer = { name, devices, gone: false };
    const server = new PluginServer(
      this.#cfg.dir,
      name,
      socketName(name),
      this.#source(offer),
      this.#log,
    );
    const resource: Resource = Object.assign(offer, { server, registeredWith: undefined });
    try {
      await resource.server.start();
    } catch (err) {
      if (!this.#blocked.has(name))
        this.#log.error({ err, resource: name }, 'cannot serve device plugin resource');
      this.#blocked.add(name);
      return;
    }
    this.#blocked.delete(name);
    this.#resources.set(name, resource);
    this.#log.info(
      { resource: name, socket: resource.server.socket, devices: devices.length },
      'device plugin resource serving',
    );
    await this.#register(resource);
  }

  async #register(r: Resource): Promise<void> {
    const kubelet = this.#kubelet.identity;
    if (kubelet === undefined || r.registeredWith === kubelet) return;
    try {
      await register(this.#kubelet.socket, r.name, r.server.endpoint, this.#abort.signal);
      r.registeredWith = kubelet;
      this.#log.info({ resource: r.name }, 'device plugin registered with the kubelet');
    } catch (err) {
      this.#log.error(
        { err, resource: r.name },
        'device plugin registration failed; retried at the next resync',
      );
    }
  }

  async #kubeletChanged(): Promise<void> {
    for (const r of this.#resources.values()) {
      // A starting kubelet clears its directory, our sockets included.
      if (await r.server.lost()) {
        await r.server.restart();
        r.registeredWith = undefined;
      }
    }
    for (const r of this.#resources.values()) await this.#register(r);
  }

  /** Reads the Devices not read yet, so that the first list shows other nodes' claims. */
  async #readMissingDevices(): Promise<void> {
    // One list per Discovery rather than a read per device: a node may see thousands.
    const missing = new Set<string>();
    for (const d of this.#visible) {
      if (!this.#devices.has(key(d))) missing.add(`${d.namespace}/${d.discovery}`);
    }
    for (const nd of missing) {
      const [namespace = '', discovery = ''] = nd.split('/');
      try {
        for (const device of await this.#cfg.store.list(namespace, discovery, this.#abort.signal)) {
          const k = key({ namespace, name: device.metadata.name });
          if (!this.#devices.has(k)) this.#devices.set(k, device);
        }
      } catch (err) {
        this.#log.warn(
          { err, discovery: nd },
          'cannot read Devices; their slots show as free until the next resync',
        );
        return;
      }
    }
  }

  async #resync(): Promise<void> {
    for (const name of [...this.#blocked]) {
      const devices = this.#desired().get(name);
      if (devices === undefined) this.#blocked.delete(name);
      else await this.#open(name, devices);
    }
    for (const r of this.#resources.values()) await this.#register(r);
    const held = await this.#held();
    const visible = new Map(this.#visible.map((d) => [key(d), d]));
    // Slot bookkeeping of devices that left the node goes with them.
    for (const times of [this.#unheldSince, this.#allocatedAt]) {
      for (const sk of times.keys()) if (!visible.has(sk.split(' ')[0] ?? '')) times.delete(sk);
    }
    const discoveries = new Set(this.#visible.map((d) => `${d.namespace}/${d.discovery}`));
    this.#devices.clear();
    for (const nd of discoveries) {
      const [namespace = '', discovery = ''] = nd.split('/');
      for (const device of await this.#cfg.store.list(namespace, discovery, this.#abort.signal)) {
        const k = key({ namespace, name: device.metadata.name });
        if (!visible.has(k)) continue;
        this.#devices.set(k, (held !== undefined && (await this.#reclaim(device, held))) || device);
      }
    }
    for (const r of this.#resources.values()) r.server.changed();
  }

  async #held(): Promise<Held | undefined> {
    try {
      const held = await heldDevices(
        this.#cfg.podResourcesSocket,
        (name) => this.#resources.has(name),
        this.#abort.signal,
      );
      if (this.#podResourcesFailing) this.#log.info('kubelet pod-resources API answers again');
      this.#podResourcesFailing = false;
      return held;
    } catch (err) {
      if (!this.#podResourcesFailing) {
        this.#log.warn(
          { err, socket: this.#cfg.podResourcesSocket },
          'kubelet pod-resources API unavailable; stale claims are kept',
        );
      }
      this.#podResourcesFailing = true;
      return undefined;
    }
  }

  /** Drops this node's claims no pod held for the grace period, and names the pods of the others. */
  async #reclaim(device: Device, held: Held): Promise<Device | undefined> {
    const namespace = device.metadata.namespace ?? '';
    const k = key({ namespace, name: device.metadata.name });
    const now = Date.now();
    const changes = compareUsage(
      device.status?.usage ?? {},
      device.metadata.name,
      this.#cfg.node,
      held,
    );
    const writes: Record<string, string | null> = { ...changes.named };
    for (const slot of Object.keys(device.status?.usage ?? {})) {
      const sk = `${k} ${slot}`;
      if (!changes.unheld.includes(slot)) {
        this.#unheldSince.delete(sk);
        continue;
      }
      const since = this.#unheldSince.get(sk) ?? now;
      this.#unheldSince.set(sk, since);
      const recent = Math.max(since, this.#allocatedAt.get(sk) ?? 0);
      if (now - recent >= this.#cfg.reclaimGraceMs) writes[slot] = null;
    }
    if (Object.keys(writes).length === 0) return undefined;
    const seen = device.status?.usage ?? {};
    const written = await updateUsage(
      this.#cfg.store,
      namespace,
      device.metadata.name,
      (current) => {
        // Only what was decided on: a slot that changed meanwhile is left to the next pass.
        const now = current.status?.usage ?? {};
        return Object.fromEntries(
          Object.entries(writes).filter(([slot]) => now[slot] === seen[slot]),
        );
      },
      this.#abort.signal,
    );
    for (const [slot, value] of Object.entries(writes)) {
      if (value === null) this.#unheldSince.delete(`${k} ${slot}`);
    }
    this.#log.info(
      {
        device: k,
        released: Object.keys(writes).filter((s) => writes[s] === null),
        named: Object.keys(changes.named),
      },
      'device slot claims reconciled with pod-resources',
    );
    return written;
  }

  /** The ResourceSource of one resource: reads the plugin's state when the kubelet asks. */
  #source(r: Offer): ResourceSource {
    const slots = () => {
      const map = new Map<string, { device: VisibleDevice; slot: number }>();
      for (const device of r.devices) {
        for (let slot = 0; slot < device.capacity; slot++)
          map.set(slotId(device.name, slot), { device, slot });
      }
      return map;
    };
    const usable = (device: VisibleDevice, slot: number) =>
      mayUse(this.#devices.get(key(device))?.status?.usage ?? {}, slot, this.#cfg.node, r.name);
    return {
      list: (): PluginDevice[] =>
        [...slots()].map(([ID, { device, slot }]) => ({
          ID,
          health: !r.gone && usable(device, slot) ? HEALTHY : UNHEALTHY,
        })),
      preferred: (req: PreferredAllocationRequest): PreferredAllocationResponse => {
        const map = slots();
        const free = (id: string) => {
          const s = map.get(id);
          return (
            s !== undefined &&
            this.#devices.get(key(s.device))?.status?.usage?.[String(s.slot)] === undefined
          );
        };
        return {
          containerResponses: req.containerRequests.map((c) => ({
            deviceIDs: preferredIds(
              c.availableDeviceIDs,
              c.mustIncludeDeviceIDs,
              c.allocationSize,
              free,
            ),
          })),
        };
      },
      allocate: (req: AllocateRequest) => this.#allocate(r, slots(), req),
    };
  }

  async #allocate(
    r: Offer,
    slots: Map<string, { device: VisibleDevice; slot: number }>,
    req: AllocateRequest,
  ): Promise<AllocateResponse> {
    if (this.#closed) throw new DevicePluginClosedError();
    // Every id is checked before anything is written.
    const containers = req.containerRequests.map((c) =>
      c.devicesIds.map((id) => {
        const s = slots.get(id);
        if (s === undefined) throw new UnknownDeviceIdError(r.name, id);
        if (r.gone) throw new DeviceUnavailableError(`${r.name} left this node`);
        return s;
      }),
    );
    const claimed: { device: VisibleDevice; slot: number }[] = [];
    try {
      for (const s of containers.flat()) {
        const device = await claimSlot(
          this.#cfg.store,
          s.device.namespace,
          s.device.name,
          s.slot,
          this.#cfg.node,
          r.name,
          this.#abort.signal,
        );
        this.#devices.set(key(s.device), device);
        this.#allocatedAt.set(`${key(s.device)} ${s.slot}`, Date.now());
        claimed.push(s);
      }
    } catch (err) {
      await this.#release(claimed, r.name);
      // The kubelet learns which slots are taken, as the API asks after a failed Allocate.
      this.#schedule(() => this.#resync());
      throw err;
    }
    this.#log.info(
      { resource: r.name, slots: claimed.map((s) => `${key(s.device)}#${s.slot}`) },
      'device slots allocated',
    );
    for (const other of this.#resources.values()) if (other !== r) other.server.changed();
    return {
      containerResponses: containers.map((c) =>
        containerResponse(
          c.map((s) => s.device),
          this.#cfg.brokerUrl,
        ),
      ),
    };
  }

  /** Gives back slots claimed by a failed Allocate (best effort: reclaim catches what fails here). */
  async #release(
    claimed: { device: VisibleDevice; slot: number }[],
    resource: string,
  ): Promise<void> {
    for (const s of claimed) {
      await updateUsage(this.#cfg.store, s.device.namespace, s.device.name, (d) => {
        const v = d.status?.usage?.[String(s.slot)];
        return v === formatClaim({ node: this.#cfg.node, resource })
          ? { [String(s.slot)]: null }
          : undefined;
      }).catch((err: unknown) =>
        this.#log.warn({ err, device: key(s.device) }, 'cannot release a slot; reclaim will'),
      );
    }
  }
}
