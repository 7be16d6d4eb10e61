import type { Discovery } from '../api/types.ts';
import type { DiscoverySource } from '../registry/registry.ts';

/** A required Secret/ConfigMap key is missing; retried, since it may be created later. */
export class PropertyUnresolvedError extends Error {
  readonly code = 'EDGEBRIDGE_PROPERTY_UNRESOLVED';
  constructor(message: string) {
    super(message);
    this.name = 'PropertyUnresolvedError';
  }
}

/**
 * Resolves spec.properties to values, reading Secrets and ConfigMaps in the
 * Discovery's namespace. The result holds credentials: it goes to the handler
 * only, never to logs, events or Devices.
 */
export async function resolveProperties(
  discovery: Discovery,
  source: DiscoverySource,
): Promise<Record<string, string>> {
  const namespace = discovery.metadata.namespace ?? 'default';
  const out: Record<string, string> = {};
  for (const p of discovery.spec.properties ?? []) {
    if (p.value !== undefined) {
      out[p.name] = p.value;
      continue;
    }
    const secret = p.valueFrom?.secretKeyRef;
    const configMap = p.valueFrom?.configMapKeyRef;
    const ref = secret ?? configMap;
    if (ref === undefined) continue;
    const value = await source.readValue({
      kind: secret !== undefined ? 'Secret' : 'ConfigMap',
      namespace,
      name: ref.name,
      key: ref.key,
    });
    if (value !== undefined) out[p.name] = value;
    else if (ref.optional !== true) {
      throw new PropertyUnresolvedError(
        `property ${p.name}: ${secret !== undefined ? 'Secret' : 'ConfigMap'} ${namespace}/${ref.name} has no key ${ref.key}`,
      );
    }
  }
  return out;
}
