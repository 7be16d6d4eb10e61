// A shared device's slots, as its Device's status.usage records them: slot
// index -> "<node>:<resource>[:<namespace>/<pod>]". The node is written at
// Allocate (the kubelet does not say for which pod); the pod is added once the
// kubelet's pod-resources API shows who holds the slot. Pure functions only.
import { slotId } from './resource-names.ts';

/** Who holds a slot. */
export interface Claim {
  node: string;
  /** The extended resource it was allocated through (the Device's or the Discovery's). */
  resource: string;
  /** namespace/name, once known. */
  pod?: string;
}

export type Usage = Readonly<Record<string, string>>;

export function formatClaim(claim: Claim): string {
  const base = `${claim.node}:${claim.resource}`;
  return claim.pod === undefined ? base : `${base}:${claim.pod}`;
}

/** The claim in a usage value; undefined when another writer put something else there. */
export function parseClaim(value: string): Claim | undefined {
  const [node, resource, pod, ...rest] = value.split(':');
  if (node === undefined || node === '' || resource === undefined || resource === '') return;
  if (rest.length > 0 || pod === '') return;
  return pod === undefined ? { node, resource } : { node, resource, pod };
}

/**
 * Whether `node` may use the slot through `resource`: free, or already its own
 * through the same resource (the kubelet hands a freed id to the next pod
 * before the stale claim is reclaimed). A value that is not a claim counts as
 * taken: never grant what cannot be read.
 */
export function mayUse(usage: Usage, slot: number, node: string, resource: string): boolean {
  const value = usage[String(slot)];
  if (value === undefined) return true;
  const claim = parseClaim(value);
  return claim !== undefined && claim.node === node && claim.resource === resource;
}

/** What the pod-resources API says this node's pods hold: `${resource} ${deviceId}` -> namespace/pod. */
export type Held = ReadonlyMap<string, string>;

export function heldKey(resource: string, id: string): string {
  return `${resource} ${id}`;
}

/** Changes to one Device's usage after a pod-resources List: claims to drop and pods to record. */
export interface UsageChanges {
  /** This node's claims that no pod holds (the caller applies a grace period first). */
  unheld: string[];
  /** Slot -> the claim with the pod that holds it, where the usage does not name it yet. */
  named: Record<string, string>;
}

/** Compares `node`'s claims on Device `device` with what its pods hold. */
export function compareUsage(usage: Usage, device: string, node: string, held: Held): UsageChanges {
  const out: UsageChanges = { unheld: [], named: {} };
  for (const [slot, value] of Object.entries(usage)) {
    const claim = parseClaim(value);
    if (claim?.node !== node) continue;
    const index = Number(slot);
    if (!Number.isInteger(index) || index < 0) continue;
    const pod = held.get(heldKey(claim.resource, slotId(device, index)));
    if (pod === undefined) out.unheld.push(slot);
    else if (pod !== claim.pod) out.named[slot] = formatClaim({ ...claim, pod });
  }
  return out;
}

/**
 * The kubelet's GetPreferredAllocation: the ids it must include, then those
 * whose slots are free across the cluster (`free`), then the rest, in the
 * order offered; `size` of them.
 */
export function preferredIds(
  available: readonly string[],
  mustInclude: readonly string[],
  size: number,
  free: (id: string) => boolean,
): string[] {
  const chosen = [...new Set(mustInclude)];
  const rest = available.filter((id) => !chosen.includes(id));
  for (const id of [...rest.filter(free), ...rest.filter((id) => !free(id))]) {
    if (chosen.length >= size) break;
    chosen.push(id);
  }
  return chosen.slice(0, Math.max(size, mustInclude.length));
}
