import type { DiscoveryHandler } from './handler.ts';
import { simulatedHandler } from './simulated/index.ts';

/** Every handler this build knows, by name. */
const handlers = new Map<string, DiscoveryHandler>([[simulatedHandler.name, simulatedHandler]]);

/** The handler registered under `name`, or undefined. */
export function findHandler(name: string): DiscoveryHandler | undefined {
  return handlers.get(name);
}

/** Names of the handlers this build knows. */
export function handlerNames(): string[] {
  return [...handlers.keys()];
}
