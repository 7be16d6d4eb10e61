// A standalone agent's --config file: Discoveries, and the Secrets that they
// or the broker's access rules name, as one YAML stream.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { Discovery } from '../../src/api/types.ts';

export interface StandaloneObjects {
  discoveries?: { namespace: string; name: string; spec: Discovery['spec'] }[];
  secrets?: { namespace: string; name: string; stringData: Record<string, string> }[];
}

export function writeStandaloneConfig(file: string, objects: StandaloneObjects): void {
  const docs = [
    ...(objects.discoveries ?? []).map((d) => ({
      apiVersion: 'edgebridge.io/v1alpha1',
      kind: 'Discovery',
      metadata: { name: d.name, namespace: d.namespace },
      spec: d.spec,
    })),
    ...(objects.secrets ?? []).map((s) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: s.name, namespace: s.namespace },
      stringData: s.stringData,
    })),
  ];
  writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
}
