/** The parts of a Node object the controller reads. */
export interface NodeObject {
  metadata: { name: string; resourceVersion?: string };
  status?: {
    conditions?: { type: string; status: string; lastTransitionTime?: string | Date }[];
  };
}

/** Whether a node is Ready, and since when; what the fold needs to drop nodes gone NotReady. */
export interface NodeReadiness {
  /** False while the Ready condition is False or Unknown (the kubelet stopped reporting). */
  ready: boolean;
  /** When the Ready condition last changed, in ms since the epoch. */
  since: number;
}

/**
 * A Node's readiness from its Ready condition. A Node with no Ready condition
 * yet (just registered) counts as ready: nothing is known against it.
 */
export function readinessOf(node: NodeObject): NodeReadiness {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready === undefined) return { ready: true, since: 0 };
  const at = ready.lastTransitionTime;
  const since = at === undefined ? 0 : new Date(at).getTime();
  return { ready: ready.status === 'True', since: Number.isNaN(since) ? 0 : since };
}
