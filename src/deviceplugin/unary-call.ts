// One unary gRPC call to a kubelet service on a Unix socket, on a channel of
// its own that is closed afterwards: the kubelet restarts independently of us,
// so nothing is kept open between calls.
import * as grpc from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { grpcAddress, socketIdentity } from './unix-socket.ts';

const DEFAULT_DEADLINE_MS = 10_000;

export interface UnaryCallOptions {
  signal?: AbortSignal;
  deadlineMs?: number;
  /** Largest answer accepted (grpc-js default 4 MiB). */
  maxReceiveBytes?: number;
}

export async function unaryCall<Res>(
  socket: string,
  service: ServiceDefinition,
  method: string,
  request: object,
  opts: UnaryCallOptions = {},
): Promise<Res> {
  opts.signal?.throwIfAborted();
  // A clear error for a path that is missing or is not a socket, before grpc-js
  // reports it as a generic UNAVAILABLE.
  if ((await socketIdentity(socket)) === undefined) {
    throw new Error(`no socket at ${socket}`);
  }
  const def = service[method];
  if (def === undefined) throw new TypeError(`no method ${method}`);
  const client = new grpc.Client(grpcAddress(socket), grpc.credentials.createInsecure(), {
    ...(opts.maxReceiveBytes !== undefined
      ? { 'grpc.max_receive_message_length': opts.maxReceiveBytes }
      : {}),
  });
  const { signal } = opts;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<Res>((resolve, reject) => {
      const call = client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => Res,
        request,
        { deadline: Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS) },
        (err, value) => {
          if (err !== null) reject(err);
          else resolve(value as Res);
        },
      );
      if (signal !== undefined) {
        onAbort = () => {
          call.cancel();
          reject(signal.reason as Error);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    client.close();
  }
}
