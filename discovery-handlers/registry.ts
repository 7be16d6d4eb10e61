import type { HandlerName } from '../src/api/types.ts';
import type { DiscoveryHandler } from './handler.ts';
import { mdnsHandler } from './mdns/index.ts';
import { mqttHandler } from './mqtt/index.ts';
import { onvifHandler } from './onvif/index.ts';
import { simulatedHandler } from './simulated/index.ts';
import { usbHandler } from './usb/index.ts';

/**
 * Every handler this build knows, keyed by the names of src/api/types.ts: the
 * compiler refuses a name listed there without a handler here, and the reverse.
 */
const handlers: { readonly [N in HandlerName]: DiscoveryHandler } = {
  mdns: mdnsHandler,
  mqtt: mqttHandler,
  onvif: onvifHandler,
  simulated: simulatedHandler,
  usb: usbHandler,
};

/** The handler registered under `name`, or undefined. */
export function findHandler(name: string): DiscoveryHandler | undefined {
  return Object.hasOwn(handlers, name) ? handlers[name as HandlerName] : undefined;
}

/** Names of the handlers this build knows. */
export function handlerNames(): string[] {
  return Object.keys(handlers);
}
