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
import { integerFlag, type IntegerFlag } from './integer-flag.ts';

export const DEFAULT_BROKER_PORT = 1883;
/** A TCP port to listen on. */
export const PORT: IntegerFlag = {
  minimum: 0,
  maximum: 65535,
  what: 'a port number; 0 picks a free one',
};

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
  const port = integerFlag('broker-port', values['broker-port'], PORT);
  const maxConnections = integerFlag('broker-max-connections', values['broker-max-connections'], {
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    what: 'the most clients connected at once',
  });
  const maxSessionExpiry = integerFlag(
    'broker-max-session-expiry',
    values['broker-max-session-expiry'],
    // MQTT 5 reserves 0xffffffff for "never expires".
    { minimum: 1, maximum: 0xfffffffe, what: 'seconds a disconnected session is kept at most' },
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
