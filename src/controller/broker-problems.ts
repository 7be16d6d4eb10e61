// Why a Discovery's brokers cannot be made, kept per owner of broker objects
// (each of its Devices, and the Discovery itself for its Service): one
// Device's broker made does not clear another's refusal, and the Discovery's
// BrokersCreated condition stays False while any of them is refused.

/** A Discovery whose problem changed, and the problem now (undefined: none). */
export interface ProblemChange {
  discovery: string;
  problem: string | undefined;
}

/** contract: refusals by owner key; set() says when a Discovery's problem changed. */
export class BrokerProblems {
  /** Discovery key -> owner key -> the API server's refusal. */
  readonly #byDiscovery = new Map<string, Map<string, string>>();
  /** Owner key -> its Discovery key, so that an owner gone can be cleared without it. */
  readonly #discoveryOf = new Map<string, string>();

  /** The Discovery's problem: the first refusal by owner key, and how many more; undefined if none. */
  get(discovery: string): string | undefined {
    const owners = this.#byDiscovery.get(discovery);
    if (owners === undefined) return undefined;
    const first = [...owners.keys()].sort()[0];
    const problem = first === undefined ? undefined : owners.get(first);
    if (problem === undefined || owners.size === 1) return problem;
    return `${problem} (and ${owners.size - 1} more refused)`;
  }

  /**
   * Records why `owner`'s objects (for `discovery`) were refused, or that they
   * were not (undefined). Returns the Discovery's new problem when it changed.
   */
  set(owner: string, discovery: string, problem: string | undefined): ProblemChange | undefined {
    const known = this.#discoveryOf.get(owner);
    const key = known ?? discovery;
    const owners = this.#byDiscovery.get(key);
    if (owners?.get(owner) === problem) return undefined;
    const before = this.get(key);
    if (problem === undefined) {
      owners?.delete(owner);
      if (owners?.size === 0) this.#byDiscovery.delete(key);
      this.#discoveryOf.delete(owner);
    } else {
      const map = owners ?? new Map<string, string>();
      map.set(owner, problem);
      this.#byDiscovery.set(key, map);
      this.#discoveryOf.set(owner, key);
    }
    const after = this.get(key);
    return after === before ? undefined : { discovery: key, problem: after };
  }
}
