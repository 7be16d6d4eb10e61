// The kubelet side of the DRA driver: a gRPC server on two Unix sockets, one
// in the kubelet's plugins_registry directory (Registration: the kubelet finds
// it there and asks GetInfo) and the driver's own (DRAPlugin: prepare and
// unprepare claims). Per-claim failures go back in the answer; nothing a
// kubelet sends can stop the server.
import * as grpc from '@grpc/grpc-js';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ClaimPreparer, ClaimRef } from './claim-preparer.ts';
import { DRIVER } from './driver.ts';
import { BadKubeletRequestError, ClaimNotPreparableError } from './errors.ts';
import {
  DRA_PLUGIN_SERVICE,
  DRA_PLUGIN_TYPE,
  DRA_PLUGIN_VERSION,
  REGISTRATION_SERVICE,
  type PluginInfo,
  type PrepareRequest,
  type PrepareResponse,
  type UnprepareResponse,
} from './kubelet-protos.ts';

/** The kubelet's default directories. */
export const DEFAULT_REGISTRY_DIR = '/var/lib/kubelet/plugins_registry';
export const DEFAULT_PLUGIN_DIR = `/var/lib/kubelet/plugins/${DRIVER}`;
/** More claims than this in one call are refused: the kubelet sends a pod's, a handful. */
const MAX_CLAIMS_PER_CALL = 128;

export interface KubeletPluginOptions {
  preparer: ClaimPreparer;
  log: Logger;
  /** The kubelet's plugins_registry directory (default /var/lib/kubelet/plugins_registry). */
  registryDir?: string;
  /** Where the DRAPlugin socket goes (default /var/lib/kubelet/plugins/edgebridge.io). */
  pluginDir?: string;
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

/** Serves Registration and DRAPlugin until close(). */
export class KubeletPlugin {
  readonly #opts: KubeletPluginOptions;
  readonly #server = new grpc.Server();
  readonly registrationSocket: string;
  readonly pluginSocket: string;
  #closed: Promise<void> | undefined;

  constructor(opts: KubeletPluginOptions) {
    this.#opts = opts;
    this.registrationSocket = path.join(
      opts.registryDir ?? DEFAULT_REGISTRY_DIR,
      `${DRIVER}-reg.sock`,
    );
    this.pluginSocket = path.join(opts.pluginDir ?? DEFAULT_PLUGIN_DIR, 'dra.sock');
    this.#server.addService(REGISTRATION_SERVICE, {
      GetInfo: this.#getInfo,
      NotifyRegistrationStatus: this.#notify,
    });
    this.#server.addService(DRA_PLUGIN_SERVICE, {
      NodePrepareResources: this.#prepare,
      NodeUnprepareResources: this.#unprepare,
    });
  }

  /** Listens on both sockets (stale ones from an earlier run are replaced). */
  async start(): Promise<void> {
    // The plugin socket first: the kubelet may call it as soon as the registration socket appears.
    for (const socket of [this.pluginSocket, this.registrationSocket]) {
      await mkdir(path.dirname(socket), { recursive: true });
      await unlink(socket).catch(() => undefined);
      await new Promise<void>((resolve, reject) =>
        this.#server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
          err === null ? resolve() : reject(err),
        ),
      );
    }
    this.#opts.log.info(
      { registration: this.registrationSocket, plugin: this.pluginSocket },
      'DRA kubelet plugin listening',
    );
  }

  /** Stops serving and removes both sockets (the kubelet then unregisters the driver). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
      for (const socket of [this.registrationSocket, this.pluginSocket])
        await unlink(socket).catch(() => undefined);
    })();
    return this.#closed;
  }

  readonly #getInfo: Unary<unknown, PluginInfo> = (_call, callback) => {
    callback(null, {
      type: DRA_PLUGIN_TYPE,
      name: DRIVER,
      endpoint: this.pluginSocket,
      supported_versions: [DRA_PLUGIN_VERSION],
    });
  };

  readonly #notify: Unary<{ plugin_registered: boolean; error: string }, object> = (
    call,
    callback,
  ) => {
    const { plugin_registered: registered, error } = call.request;
    if (registered) this.#opts.log.info('DRA driver registered with the kubelet');
    else this.#opts.log.error({ err: error.slice(0, 512) }, 'the kubelet refused the DRA driver');
    callback(null, {});
  };

  readonly #prepare: Unary<PrepareRequest, PrepareResponse> = (call, callback) => {
    const claims = call.request.claims;
    if (claims.length > MAX_CLAIMS_PER_CALL) {
      callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `more than ${MAX_CLAIMS_PER_CALL} claims`,
      });
      return;
    }
    void (async () => {
      const answer: PrepareResponse = { claims: {} };
      for (const claim of claims) {
        try {
          const devices = await this.#opts.preparer.prepare(claim);
          answer.claims[claim.uid] = {
            error: '',
            devices: devices.map((d) => ({
              request_names: d.requestNames,
              pool_name: d.poolName,
              device_name: d.deviceName,
              cdi_device_ids: d.cdiDeviceIds,
            })),
          };
          this.#opts.log.info({ claim: refText(claim), devices: devices.length }, 'claim prepared');
        } catch (err) {
          answer.claims[claim.uid] = { devices: [], error: this.#failure('prepare', claim, err) };
        }
      }
      callback(null, answer);
    })();
  };

  readonly #unprepare: Unary<PrepareRequest, UnprepareResponse> = (call, callback) => {
    const claims = call.request.claims;
    if (claims.length > MAX_CLAIMS_PER_CALL) {
      callback({
        code: grpc.status.INVALID_ARGUMENT,
        details: `more than ${MAX_CLAIMS_PER_CALL} claims`,
      });
      return;
    }
    void (async () => {
      const answer: UnprepareResponse = { claims: {} };
      for (const claim of claims) {
        try {
          await this.#opts.preparer.unprepare(claim);
          answer.claims[claim.uid] = { error: '' };
          this.#opts.log.info({ claim: refText(claim) }, 'claim unprepared');
        } catch (err) {
          answer.claims[claim.uid] = { error: this.#failure('unprepare', claim, err) };
        }
      }
      callback(null, answer);
    })();
  };

  /** One log line and the error text for the kubelet. */
  #failure(what: string, claim: ClaimRef, err: unknown): string {
    const message = (err as Error).message;
    const expected =
      err instanceof ClaimNotPreparableError || err instanceof BadKubeletRequestError;
    this.#opts.log[expected ? 'warn' : 'error'](
      { claim: refText(claim), err: message, code: (err as { code?: unknown }).code },
      `cannot ${what} claim`,
    );
    return `${what} ${refText(claim)}: ${message}`;
  }
}

/** namespace/name (uid) of an untrusted claim, short. */
function refText(c: ClaimRef): string {
  const s = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 64) : '?');
  return `${s(c.namespace)}/${s(c.name)} (${s(c.uid)})`;
}
