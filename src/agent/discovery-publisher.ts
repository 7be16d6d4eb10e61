import type { DiscoveredDevice, DevicePublisher } from '../../discovery-handlers/handler.ts';
import type { Discovery } from '../api/types.ts';

/** The DevicePublisher of one Discovery's run, told which devices the handler currently lists. */
export interface DiscoveryPublisher extends DevicePublisher {
  /** The handler's complete current list: devices that appear go online, those that left go offline. */
  observe(devices: readonly DiscoveredDevice[]): void;
  /** The run stopped: its devices go offline; resolves when what was published has been taken. */
  close(): Promise<void>;
}

/** Makes the publisher for a Discovery's run; `shared` is its handler's (it changes device names). */
export type PublisherFactory = (discovery: Discovery, shared: boolean) => DiscoveryPublisher;
