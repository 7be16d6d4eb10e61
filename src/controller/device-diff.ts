// What a Device should look like, and whether the stored one differs: pure, so
// that "only changed objects are written" is checked in unit tests.
import { API_VERSION, type Device, type Discovery, type OwnerReference } from '../api/types.ts';
import { dataTopic, eventsTopic, stateTopic } from '../dataplane/topics.ts';
import { canonicalJson } from '../util/canonical-json.ts';

/** The owner reference every Device carries (the embedded registry writes the same). */
export function discoveryOwner(discovery: Discovery): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'Discovery',
    name: discovery.metadata.name,
    uid: discovery.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** A folded Device completed with its owner reference and topics. */
export function wantedDevice(folded: Device, discovery: Discovery): Device {
  const ns = folded.metadata.namespace ?? 'default';
  const name = folded.metadata.name;
  return {
    ...folded,
    metadata: { ...folded.metadata, ownerReferences: [discoveryOwner(discovery)] },
    status: {
      nodes: folded.status?.nodes ?? [],
      topics: {
        data: dataTopic(ns, name),
        state: stateTopic(ns, name),
        events: eventsTopic(ns, name),
      },
    },
  };
}

/** The stored owner references with the Discovery's in place of any other Discovery reference. */
function ownersOf(actual: Device, wanted: Device): OwnerReference[] {
  const others = (actual.metadata.ownerReferences ?? []).filter(
    (o) => !(o.apiVersion === API_VERSION && o.kind === 'Discovery'),
  );
  return [...others, ...(wanted.metadata.ownerReferences ?? [])];
}

/** True if labels, owner references or spec differ (what a replace of the object sets). */
export function objectDiffers(actual: Device, wanted: Device): boolean {
  return (
    canonicalJson(actual.metadata.labels ?? {}) !== canonicalJson(wanted.metadata.labels ?? {}) ||
    canonicalJson(actual.metadata.ownerReferences ?? []) !==
      canonicalJson(ownersOf(actual, wanted)) ||
    canonicalJson(actual.spec) !== canonicalJson(wanted.spec)
  );
}

/** True if status.nodes or status.topics differ (what the controller owns of the status). */
export function statusDiffers(actual: Device, wanted: Device): boolean {
  return (
    canonicalJson(actual.status?.nodes ?? []) !== canonicalJson(wanted.status?.nodes ?? []) ||
    canonicalJson(actual.status?.topics ?? {}) !== canonicalJson(wanted.status?.topics ?? {})
  );
}

/** The stored Device with the wanted labels, owner references and spec; its resource version is the precondition. */
export function replacement(actual: Device, wanted: Device): Device {
  return {
    ...actual,
    metadata: {
      ...actual.metadata,
      labels: wanted.metadata.labels ?? {},
      ownerReferences: ownersOf(actual, wanted),
    },
    spec: wanted.spec,
  };
}
