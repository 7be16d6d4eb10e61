// One resource's DevicePlugin service on its own Unix socket. The server knows
// nothing of Devices: a ResourceSource answers for it, and changed() sends
// ListAndWatch streams the source's new list.
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DeviceUnavailableError, SlotTakenError, UnknownDeviceIdError } from './errors.ts';
import {
  devicePluginService,
  type AllocateRequest,
  type AllocateResponse,
  type DevicePluginOptions,
  type ListAndWatchResponse,
  type PluginDevice,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
} from './protos.ts';
import { grpcAddress, removeStaleSocket, socketIdentity } from './unix-socket.ts';

/** What a resource offers and how its devices are given out. */
export interface ResourceSource {
  /** The resource's devices now, each Healthy or Unhealthy. */
  list(): PluginDevice[];
  /** One container's response per request; rejects when any id cannot be given. */
  allocate(request: AllocateRequest): Promise<AllocateResponse>;
  preferred(request: PreferredAllocationRequest): PreferredAllocationResponse;
}

/** The kubelet's messages are small; a peer sending more is refused (RESOURCE_EXHAUSTED) before decoding. */
export const MAX_REQUEST_BYTES = 256 * 1024;

const SHUTDOWN_GRACE_MS = 1_000;

export class PluginServer {
  readonly resource: string;
  readonly socket: string;
  readonly #source: ResourceSource;
  readonly #log: Logger;
  #server: grpc.Server | undefined;
  #identity: string | undefined;
  readonly #streams = new Set<grpc.ServerWritableStream<object, ListAndWatchResponse>>();
  #last = '';
  #closed = false;

  constructor(
    dir: string,
    resource: string,
    socketName: string,
    source: ResourceSource,
    log: Logger,
  ) {
    this.resource = resource;
    this.socket = path.join(dir, socketName);
    this.#source = source;
    this.#log = log.child({ resource });
  }

  /** The socket name the kubelet is told to dial (relative to its directory). */
  get endpoint(): string {
    return path.basename(this.socket);
  }

  /** Listens; throws NotASocketError if something other than a socket is in the way. */
  async start(): Promise<void> {
    if (this.#closed) return;
    await removeStaleSocket(this.socket);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
    server.addService(devicePluginService, this.#handlers());
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(grpcAddress(this.socket), grpc.ServerCredentials.createInsecure(), (err) =>
        err === null ? resolve() : reject(err),
      );
    });
    this.#server = server;
    this.#identity = await socketIdentity(this.socket);
    this.#last = JSON.stringify(this.#source.list());
  }

  /** True when the socket file is gone or is another server's (a restarting kubelet clears its directory). */
  async lost(): Promise<boolean> {
    if (this.#server === undefined) return true;
    const now = await socketIdentity(this.socket).catch(() => undefined);
    return now === undefined || now !== this.#identity;
  }

  /** Serves again on a fresh socket, ending the old server's streams. */
  async restart(): Promise<void> {
    await this.#stop(false);
    await this.start();
  }

  /** Sends every ListAndWatch stream the source's list, if it changed since the last one sent. */
  changed(): void {
    const devices = this.#source.list();
    const text = JSON.stringify(devices);
    if (text === this.#last) return;
    this.#last = text;
    for (const stream of this.#streams) stream.write({ devices });
    this.#log.info(
      { healthy: devices.filter((d) => d.health === 'Healthy').length, devices: devices.length },
      'device plugin list changed',
    );
  }

  /** Stops serving and removes the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stop(true);
  }

  async #stop(unlinkSocket: boolean): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    if (server !== undefined) {
      // The ended streams flush their last list; a kubelet that does not hang up
      // in time is cut off.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (
      unlinkSocket &&
      (await socketIdentity(this.socket).catch(() => undefined)) === this.#identity
    ) {
      await unlink(this.socket).catch(() => undefined);
    }
  }

  #handlers(): grpc.UntypedServiceImplementation {
    const options: DevicePluginOptions = {
      preStartRequired: false,
      getPreferredAllocationAvailable: true,
    };
    return {
      GetDevicePluginOptions: (
        _call: grpc.ServerUnaryCall<object, object>,
        cb: grpc.sendUnaryData<object>,
      ) => {
        cb(null, options);
      },
      ListAndWatch: (call: grpc.ServerWritableStream<object, ListAndWatchResponse>) => {
        this.#streams.add(call);
        const drop = () => this.#streams.delete(call);
        call.on('cancelled', drop);
        call.on('close', drop);
        call.on('error', drop);
        call.write({ devices: this.#source.list() });
      },
      GetPreferredAllocation: (
        call: grpc.ServerUnaryCall<PreferredAllocationRequest, PreferredAllocationResponse>,
        cb: grpc.sendUnaryData<PreferredAllocationResponse>,
      ) => {
        cb(null, this.#source.preferred(call.request));
      },
      Allocate: (
        call: grpc.ServerUnaryCall<AllocateRequest, AllocateResponse>,
        cb: grpc.sendUnaryData<AllocateResponse>,
      ) => {
        this.#source.allocate(call.request).then(
          (res) => cb(null, res),
          (err: unknown) => {
            this.#log.warn({ err, ids: idsOf(call.request) }, 'device plugin allocation refused');
            cb(toGrpcError(err));
          },
        );
      },
      PreStartContainer: (
        _call: grpc.ServerUnaryCall<object, object>,
        cb: grpc.sendUnaryData<object>,
      ) => {
        cb(null, {});
      },
    };
  }
}

function idsOf(req: AllocateRequest): string[] {
  return req.containerRequests.flatMap((c) => c.devicesIds).slice(0, 16);
}

/** The gRPC status the kubelet sees for one of our errors; anything else is INTERNAL. */
function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  const details = err instanceof Error ? err.message : String(err);
  if (err instanceof UnknownDeviceIdError) return { code: grpc.status.INVALID_ARGUMENT, details };
  if (err instanceof SlotTakenError) return { code: grpc.status.FAILED_PRECONDITION, details };
  if (err instanceof DeviceUnavailableError) return { code: grpc.status.UNAVAILABLE, details };
  return { code: grpc.status.INTERNAL, details };
}
