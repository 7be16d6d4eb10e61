import type { Logger } from 'pino';
import { checkSchema, SchemaError } from '../src/util/schema-check.ts';
import { onlyChanges } from './device-list.ts';
import { discoveredDeviceSchema } from './device-schema.ts';
import type { DiscoveredDevice } from './handler.ts';

/**
 * What every handler's lists go through before anyone uses them (the agent,
 * `edgebridge scan`): each device is checked against the shared device schema
 * and dropped, with one log line, if it does not fit (the rest of the list
 * stands); a repeated id keeps its first device; and a list is passed on only
 * when it differs from the one before.
 */
export function checkedLists(
  lists: AsyncIterable<DiscoveredDevice[]>,
  log: Logger,
): AsyncGenerator<DiscoveredDevice[]> {
  return onlyChanges(validDevices(lists, log));
}

async function* validDevices(
  lists: AsyncIterable<DiscoveredDevice[]>,
  log: Logger,
): AsyncGenerator<DiscoveredDevice[]> {
  // Problems logged for the list before: a device that stays bad is logged once, not every poll.
  let logged = new Set<string>();
  for await (const list of lists) {
    const seen = new Set<string>();
    const problems = new Set<string>();
    const good: DiscoveredDevice[] = [];
    for (const [index, device] of list.entries()) {
      const checked = checkedDevice(device, seen);
      if (checked.ok) {
        seen.add(checked.device.id);
        good.push(checked.device);
        continue;
      }
      const problem = checked.problem;
      const id = typeof device?.id === 'string' ? device.id.slice(0, 128) : undefined;
      const key = `${id ?? `#${index}`}\u0000${problem}`;
      problems.add(key);
      if (!logged.has(key))
        log.warn({ device: id ?? `#${index}`, problem }, 'handler reported a bad device; dropped');
    }
    logged = problems;
    yield good;
  }
}

/** The device as the schema admits it (defaults filled in), or why it cannot be used. */
function checkedDevice(
  device: DiscoveredDevice,
  seen: Set<string>,
): { ok: true; device: DiscoveredDevice } | { ok: false; problem: string } {
  let checked: DiscoveredDevice;
  try {
    checked = checkSchema(discoveredDeviceSchema, device, 'device') as DiscoveredDevice;
  } catch (err) {
    if (err instanceof SchemaError) return { ok: false, problem: err.message };
    throw err;
  }
  return seen.has(checked.id)
    ? { ok: false, problem: 'device.id: listed twice; the first one is kept' }
    : { ok: true, device: checked };
}
