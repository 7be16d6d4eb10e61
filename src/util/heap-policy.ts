// The agent is long-lived and shares small nodes. By default V8 lets the old
// generation grow far past its live size between full collections: replaying
// a backlog held 30-90 MB live in a 200 MB RSS. A 20% growing factor keeps RSS
// near the live size for a few percent of CPU (`npm run bench -- dataplane`).
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 20;

/** Applies the agent's heap growing factor, unless node was started with one of its own. */
export function applyHeapPolicy(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
