// A Discovery's status from the fold of its slices: the number of Devices, a
// condition naming the reporting nodes, spec conflicts as a condition (the
// fold has already chosen a winner: no write war), and the nodes' own
// conditions (DetailsValid, Discovering) from their slices, aggregated.
import type { Condition, DeviceSlice, Discovery, DiscoveryStatus } from '../api/types.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import type { FoldResult } from './fold.ts';

export const CONDITION_NODES_REPORTING = 'NodesReporting';
export const CONDITION_SPEC_CONFLICT = 'SpecConflict';

/** Longest condition message; beyond it, a list ends in "and N more". */
const MAX_MESSAGE = 1024;
/** Most names listed in one message. */
const MAX_NAMES = 10;

type Draft = Omit<Condition, 'lastTransitionTime'>;

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function names(list: readonly string[]): string {
  const shown = list.slice(0, MAX_NAMES).join(', ');
  return list.length > MAX_NAMES ? `${shown} and ${list.length - MAX_NAMES} more` : shown;
}

function clip(text: string): string {
  return text.length <= MAX_MESSAGE ? text : `${text.slice(0, MAX_MESSAGE - 1)}…`;
}

function reportingCondition(fold: FoldResult): Draft {
  const { reportingNodes, droppedNodes } = fold.status;
  const dropped =
    droppedNodes.length === 0
      ? ''
      : `; left out, NotReady longer than the node grace period: ${names(droppedNodes)}`;
  if (reportingNodes.length === 0)
    return {
      type: CONDITION_NODES_REPORTING,
      status: 'False',
      reason: 'NoNodes',
      message: clip(`no node reports this Discovery${dropped}`),
    };
  const n = reportingNodes.length;
  return {
    type: CONDITION_NODES_REPORTING,
    status: 'True',
    reason: 'NodesReporting',
    message: clip(`${n} node${n === 1 ? '' : 's'} report: ${names(reportingNodes)}${dropped}`),
  };
}

function conflictCondition(fold: FoldResult): Draft {
  if (fold.conflicts.length === 0)
    return {
      type: CONDITION_SPEC_CONFLICT,
      status: 'False',
      reason: 'NodesAgree',
      message: 'every node reports the same properties for each shared device',
    };
  const parts = fold.conflicts
    .slice(0, MAX_NAMES)
    .map(
      (c) =>
        `${c.device} (${c.keys.join(', ')}): the view of ${names(c.chosen)} is used, not that of ${names(c.overruled)}`,
    );
  const more =
    fold.conflicts.length > MAX_NAMES ? `; and ${fold.conflicts.length - MAX_NAMES} more` : '';
  return {
    type: CONDITION_SPEC_CONFLICT,
    status: 'True',
    reason: 'NodesDisagree',
    message: clip(
      `${fold.conflicts.length} shared device${fold.conflicts.length === 1 ? '' : 's'} reported differently: ${parts.join('; ')}${more}`,
    ),
  };
}

/**
 * The nodes' own conditions of each type, one per type: False if any node
 * says False (naming those nodes), else Unknown if any says Unknown, else True.
 */
function nodeConditions(slices: readonly DeviceSlice[], counted: ReadonlySet<string>): Draft[] {
  const byType = new Map<string, { node: string; condition: Condition }[]>();
  for (const slice of slices) {
    if (!counted.has(slice.spec.node)) continue;
    for (const condition of slice.spec.conditions ?? []) {
      const list = byType.get(condition.type) ?? [];
      list.push({ node: slice.spec.node, condition });
      byType.set(condition.type, list);
    }
  }
  const out: Draft[] = [];
  for (const [type, list] of [...byType].sort((a, b) => byString(a[0], b[0]))) {
    list.sort((a, b) => byString(a.node, b.node));
    const status: Condition['status'] = list.some((x) => x.condition.status === 'False')
      ? 'False'
      : list.some((x) => x.condition.status === 'Unknown')
        ? 'Unknown'
        : 'True';
    const these = list.filter((x) => x.condition.status === status);
    const first = these[0]?.condition;
    if (first === undefined) continue;
    const message =
      status === 'True'
        ? `on ${these.length} node${these.length === 1 ? '' : 's'}: ${first.message}`
        : these
            .slice(0, MAX_NAMES)
            .map((x) => `on node ${x.node}: ${x.condition.message}`)
            .join('; ') +
          (these.length > MAX_NAMES ? `; and ${these.length - MAX_NAMES} more nodes` : '');
    out.push({ type, status, reason: first.reason, message: clip(message) });
  }
  return out;
}

/**
 * The status the controller wants for a Discovery. A condition keeps its
 * lastTransitionTime while its status stays the same, so that a status whose
 * meaning did not change is equal to the stored one and is not written.
 */
export function discoveryStatus(
  discovery: Discovery,
  fold: FoldResult,
  slices: readonly DeviceSlice[],
  now: Date,
  brokerProblem?: string,
  deviceClassProblem?: string,
): DiscoveryStatus {
  const counted = new Set(fold.status.reportingNodes);
  const drafts = [
    reportingCondition(fold),
    conflictCondition(fold),
    ...brokersCondition(discovery, brokerProblem),
    ...deviceClassCondition(deviceClassProblem),
    ...nodeConditions(
      slices.filter((s) => s.spec.discovery === discovery.metadata.name),
      counted,
    ),
  ];
  const previous = new Map((discovery.status?.conditions ?? []).map((c) => [c.type, c]));
  const generation = discovery.metadata.generation;
  const conditions = drafts.map((d): Condition => {
    const old = previous.get(d.type);
    return {
      ...d,
      lastTransitionTime:
        old !== undefined && old.status === d.status ? old.lastTransitionTime : now.toISOString(),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
  });
  return {
    devices: fold.status.devices,
    conditions,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

/** True if the stored status says something other than `wanted`. */
export function statusChanged(discovery: Discovery, wanted: DiscoveryStatus): boolean {
  const stored = discovery.status ?? {};
  return (
    canonicalJson({
      devices: stored.devices ?? 0,
      conditions: stored.conditions,
      observedGeneration: stored.observedGeneration,
    }) !==
    canonicalJson({
      devices: wanted.devices ?? 0,
      conditions: wanted.conditions,
      observedGeneration: wanted.observedGeneration,
    })
  );
}

/** BrokersCreated, for a Discovery that asks for brokers: False with the API server's reason while they cannot be made. */
function brokersCondition(discovery: Discovery, problem: string | undefined): Draft[] {
  const { broker, deviceService, discoveryService } = discovery.spec;
  if (broker === undefined && deviceService === undefined && discoveryService === undefined)
    return [];
  return [
    problem === undefined
      ? {
          type: 'BrokersCreated',
          status: 'True',
          reason: 'Created',
          message: 'brokers and services are made as devices come and go',
        }
      : { type: 'BrokersCreated', status: 'False', reason: 'Refused', message: problem },
  ];
}

/** DeviceClassCreated=False while the controller cannot make the Discovery's DRA DeviceClass; absent otherwise. */
function deviceClassCondition(problem: string | undefined): Draft[] {
  if (problem === undefined) return [];
  return [
    { type: 'DeviceClassCreated', status: 'False', reason: 'Refused', message: clip(problem) },
  ];
}
