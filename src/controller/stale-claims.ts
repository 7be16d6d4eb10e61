// Device plugin claims (a Device's status.usage, see deviceplugin/claims.ts)
// that no agent will ever release: a node's own agent reclaims its claims
// through the kubelet, so a node that is gone leaves them taken for good. The
// controller releases those of nodes that are gone by the fold's measure:
// deleted, or NotReady longer than the node grace period (Kubernetes has
// evicted their pods by then). Pure logic, so that the rules are unit-tested.
import { parseClaim, type Usage } from '../deviceplugin/claims.ts';
import type { NodeReadiness } from './node-readiness.ts';

export interface StaleClaims {
  /** Slots to release, in usage order. */
  slots: string[];
  /** The nodes that held them, for the log. */
  nodes: string[];
  /** When the soonest grace period of a node whose claims are kept ends (ms from `now`), if any. */
  recheckInMs?: number;
}

/**
 * The slots of `usage` held by nodes that are gone: `readiness` tells how a
 * node stands (see ClaimHolders). A value that is not a claim is kept.
 */
export function staleClaims(
  usage: Usage,
  readiness: (node: string) => NodeReadiness,
  graceMs: number,
  now: number,
): StaleClaims {
  const out: StaleClaims = { slots: [], nodes: [] };
  for (const [slot, value] of Object.entries(usage)) {
    const node = parseClaim(value)?.node;
    if (node === undefined) continue;
    const r = readiness(node);
    if (r.ready) continue;
    const left = r.since + graceMs - now;
    if (left < 0) {
      out.slots.push(slot);
      if (!out.nodes.includes(node)) out.nodes.push(node);
    } else if (out.recheckInMs === undefined || left < out.recheckInMs) out.recheckInMs = left;
  }
  return out;
}

/**
 * How the nodes that hold claims stand, Node object or not. A Node seen
 * deleted is gone at once. A node with no Node in the cache is counted
 * NotReady from when it was first found so: its Node may not have reached the
 * cache yet (never release a live node's claim), or it was deleted while the
 * controller was not watching (release it after the grace period).
 */
export class ClaimHolders {
  /** Node -> since when it has had no Node object (0: seen deleted). */
  readonly #missing = new Map<string, number>();

  /** A Node was seen deleted. */
  deleted(node: string): void {
    this.#missing.set(node, 0);
  }

  /** How `node` stands, given its Node's readiness if the cache has one. */
  readiness(node: string, known: NodeReadiness | undefined, now: number): NodeReadiness {
    if (known !== undefined) {
      this.#missing.delete(node);
      return known;
    }
    let since = this.#missing.get(node);
    if (since === undefined) {
      since = now;
      this.#missing.set(node, since);
    }
    return { ready: false, since };
  }

  /** Forgets the nodes that hold no claim in these usages any more. */
  prune(usages: Iterable<Usage>): void {
    if (this.#missing.size === 0) return;
    const holding = new Set<string>();
    for (const usage of usages)
      for (const value of Object.values(usage)) {
        const node = parseClaim(value)?.node;
        if (node !== undefined) holding.add(node);
      }
    for (const node of this.#missing.keys()) if (!holding.has(node)) this.#missing.delete(node);
  }
}
