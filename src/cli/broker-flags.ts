// The agent's node broker flags: embedded (default) on --broker-host and
// --broker-port with --broker-config, --broker-max-connections and
// --broker-max-session-expiry, an external
// broker with --broker-url, or none with --no-broker.
import type { BrokerMode } from '../dataplane/data-plane.ts';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_SESSION_EXPIRY_S,
} from '../dataplane/embedded-broker.ts';
import { UsageError } from './errors.ts';

export const DEFAULT_BROKER_PORT = 1883;

export const brokerFlagOptions = {
  broker: { type: 'boolean', default: true },
  'broker-host': { type: 'string', default: '0.0.0.0' },
  'broker-port': { type: 'string', default: String(DEFAULT_BROKER_PORT) },
  'broker-config': { type: 'string' },
  'broker-max-connections': { type: 'string', default: String(DEFAULT_MAX_CONNECTIONS) },
  'broker-max-session-expiry': { type: 'string', default: String(DEFAULT_MAX_SESSION_EXPIRY_S) },
  'broker-url': { type: 'string' },
  'broker-ca': { type: 'string' },
} as const;

export interface BrokerFlagValues {
  broker: boolean;
  'broker-host': string;
  'broker-port': string;
  'broker-config'?: string | undefined;
  'broker-max-connections': string;
  'broker-max-session-expiry': string;
  'broker-url'?: string | undefined;
  'broker-ca'?: string | undefined;
}

/** Flags that set up the embedded broker: meaningless with --broker-url or --no-broker. */
const EMBEDDED_ONLY_FLAGS = [
  'broker-config',
  'broker-port',
  'broker-host',
  'broker-max-connections',
  'broker-max-session-expiry',
];

/** The broker to run, or undefined for --no-broker. */
export function brokerModeFrom(
  values: BrokerFlagValues,
  given: (flag: string) => boolean,
): BrokerMode | undefined {
  if (!values.broker) {
    const extra = ['broker-url', ...EMBEDDED_ONLY_FLAGS].find(given);
    if (extra !== undefined) throw new UsageError(`--no-broker and --${extra} exclude each other`);
    return undefined;
  }
  const url = values['broker-url'];
  if (url !== undefined) {
    const embeddedOnly = EMBEDDED_ONLY_FLAGS.find(given);
    if (embeddedOnly !== undefined)
      throw new UsageError(
        `--broker-url (an external broker) and --${embeddedOnly} exclude each other`,
      );
    return {
      kind: 'external',
      url,
      ...(values['broker-ca'] !== undefined ? { caFile: values['broker-ca'] } : {}),
    };
  }
  if (values['broker-ca'] !== undefined)
    throw new UsageError(
      '--broker-ca is for --broker-url; the embedded broker takes TLS files from --broker-config',
    );
  const port = Number(values['broker-port']);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError('--broker-port must be a port number (0 picks a free one)');
  const maxConnections = Number(values['broker-max-connections']);
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw new UsageError('--broker-max-connections must be a whole number of at least 1');
  const maxSessionExpiry = Number(values['broker-max-session-expiry']);
  if (!Number.isInteger(maxSessionExpiry) || maxSessionExpiry < 1 || maxSessionExpiry > 0xfffffffe)
    throw new UsageError(
      '--broker-max-session-expiry must be a whole number of seconds, at least 1',
    );
  return {
    kind: 'embedded',
    host: values['broker-host'],
    port,
    maxConnections,
    maxSessionExpirySeconds: maxSessionExpiry,
    ...(values['broker-config'] !== undefined ? { configFile: values['broker-config'] } : {}),
  };
}
