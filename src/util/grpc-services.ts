// gRPC service definitions for grpc-js, built from .proto files with
// protobufjs: the one protobuf library in the tree (Sparkplug B needs it
// anyway), for the device plugin's and the DRA driver's kubelet services.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';

export interface ProtoOptions {
  /** Keep the .proto field names (snake_case); by default they are camelCased. */
  keepCase?: boolean;
}

/** Parses and resolves .proto files (no imports between them) into one root. */
export function loadProtos(files: readonly string[], opts: ProtoOptions = {}): protobuf.Root {
  const root = new protobuf.Root();
  for (const file of files)
    protobuf.parse(readFileSync(file, 'utf8'), root, { keepCase: opts.keepCase ?? false });
  root.resolveAll();
  return root;
}

/**
 * A grpc-js service definition for the service `name` (package-qualified) of
 * a root. Messages are decoded into plain objects with defaults filled in
 * (empty arrays and maps, int64 as numbers), so that handlers see the same
 * shape whatever the peer omitted.
 */
export function grpcService(root: protobuf.Root, name: string): ServiceDefinition {
  const svc = root.lookupService(name);
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const method of svc.methodsArray) {
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (req === null || res === null) throw new Error(`${name}.${method.name}: unresolved types`);
    def[method.name] = {
      path: `/${svc.fullName.slice(1)}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: encoder(req),
      requestDeserialize: decoder(req),
      responseSerialize: encoder(res),
      responseDeserialize: decoder(res),
      originalName: method.name,
    };
  }
  return def as ServiceDefinition;
}

function encoder(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function decoder(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) =>
    type.toObject(type.decode(bytes), {
      defaults: true,
      arrays: true,
      objects: true,
      longs: Number,
    });
}
