// The agent's DRA driver: publishes the node's devices as ResourceSlices and
// serves the kubelet plugin that prepares claims for them. The agent feeds it
// with update(); everything else is its own.
import type { Logger } from 'pino';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { DEFAULT_CDI_DIR } from './cdi-spec.ts';
import { ClaimPreparer } from './claim-preparer.ts';
import { DraClosedError } from './errors.ts';
import { KubeletPlugin } from './kubelet-plugin.ts';
import type { NodeDevice } from './node-device.ts';
import { wantedPool } from './resource-slices.ts';
import { SlicePublisher } from './slice-publisher.ts';

export interface DraDriverOptions {
  client: KubeClient;
  node: string;
  log: Logger;
  /** CDI specs go here (default /var/run/cdi). */
  cdiDir?: string;
  /** The kubelet's plugins_registry directory. */
  registryDir?: string;
  /** The directory of the driver's own socket. */
  pluginDir?: string;
  /** The node broker's URL for pods, given to prepared containers. */
  brokerUrl?: string;
  /** Changes closer together than this become one ResourceSlice write (default 200 ms). */
  coalesceMs?: number;
}

/** What the agent uses: the devices this node sees now, and a way to stop. */
export interface DraDevices {
  /** The complete list of devices this node sees; the latest call wins. */
  update(devices: readonly NodeDevice[]): void;
  close(): Promise<void>;
}

export class DraDriver implements DraDevices {
  readonly #opts: DraDriverOptions;
  readonly #publisher: SlicePublisher;
  readonly plugin: KubeletPlugin;
  #byName = new Map<string, NodeDevice>();
  /** Devices whose attributes were last reported as incomplete, with what was said. */
  #reported = new Map<string, string>();
  #closing: Promise<void> | undefined;

  constructor(opts: DraDriverOptions) {
    this.#opts = opts;
    this.#publisher = new SlicePublisher({
      client: opts.client,
      node: opts.node,
      log: opts.log,
      ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}),
    });
    const preparer = new ClaimPreparer({
      client: opts.client,
      node: opts.node,
      cdiDir: opts.cdiDir ?? DEFAULT_CDI_DIR,
      lookup: (name) => this.#byName.get(name),
      cdi: opts.brokerUrl !== undefined ? { brokerUrl: opts.brokerUrl } : {},
    });
    this.plugin = new KubeletPlugin({
      preparer,
      log: opts.log,
      ...(opts.registryDir !== undefined ? { registryDir: opts.registryDir } : {}),
      ...(opts.pluginDir !== undefined ? { pluginDir: opts.pluginDir } : {}),
    });
  }

  /** Starts the kubelet plugin's sockets; slices are published from the first update(). */
  async start(): Promise<void> {
    if (this.#closing !== undefined) throw new DraClosedError();
    await this.plugin.start();
  }

  /** Number of ResourceSlice writes so far. */
  get sliceWrites(): number {
    return this.#publisher.writes;
  }

  /** Resolves once every update() so far is published. */
  settled(): Promise<void> {
    return this.#publisher.settled();
  }

  update(devices: readonly NodeDevice[]): void {
    if (this.#closing !== undefined) return;
    const pool = wantedPool(this.#opts.node, devices);
    this.#byName = pool.byName;
    // One line per device whose attributes are incomplete, again only when that changes.
    const reported = new Map<string, string>();
    for (const [device, skipped] of pool.skipped) {
      const text = skipped.join('; ');
      reported.set(device, text);
      if (this.#reported.get(device) !== text)
        this.#opts.log.warn(
          { device, skipped: skipped.slice(0, 8), more: Math.max(0, skipped.length - 8) },
          'device published to DRA without some attributes',
        );
    }
    this.#reported = reported;
    this.#publisher.set(pool.slices);
  }

  /** Stops the plugin and the publisher; the slices stay (they go with the Node). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([this.plugin.close(), this.#publisher.close()]).then(
      () => undefined,
    );
    return this.#closing;
  }
}
