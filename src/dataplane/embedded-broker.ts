// The node broker inside the agent: aedes (MQTT 3.1, 3.1.1 and 5) on a TCP or TLS
// listener, with our authentication, sessions that belong to the principal
// that made them, per-device access control, a cap on open connections, a
// packet-size guard in front of the parser, MQTT 5 shared subscriptions (ours:
// see shared-subscriptions.ts), and the beforeAck hook that lets the uplink
// make a message durable before the client gets its PUBACK.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import type { AgentMetrics } from '../metrics.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import type { Decision, Principal } from './access.ts';
import type { AuthResult } from './authenticator.ts';
import { BrokerClosedError, BrokerConfigError, PacketTooLargeError } from './errors.ts';
import {
  INTERNAL_CLIENT_ID,
  type BrokerMessage,
  type NodeBroker,
  type PublishOptions,
} from './node-broker.ts';
import { SizeLimitedConnection } from './packet-size-guard.ts';
import { publishPropertiesOf, type PublishProperties } from './publish-properties.ts';
import { PublishInbox } from './publish-inbox.ts';
import { SessionOwners } from './session-owners.ts';
import {
  advertiseSharedSubscriptions,
  interceptSharedPackets,
  type SharedPacketsOptions,
} from './shared-packets.ts';
import { SharedSubscriptions } from './shared-subscriptions.ts';
import { TOPIC_ROOT } from './topics.ts';

/** A message on its way into the broker, before anyone has it or is told it was taken. */
export interface BeforeAckMessage extends PublishProperties {
  topic: string;
  payload: Buffer;
  /** The publishing client's id; INTERNAL_CLIENT_ID for the agent's own messages. */
  clientId: string;
  qos: 0 | 1 | 2;
  retain: boolean;
}

/**
 * Awaited for every message, in the order each client sent them, before the
 * messages are delivered and before a QoS 1/2 publisher is acknowledged; a
 * client's publishes of one socket read come as one call, to be stored all or
 * none. If it rejects, the messages are neither delivered nor acknowledged:
 * MQTT 3.1.1 has no negative PUBACK, so the client's connection is closed and
 * it resends after reconnecting; one line is logged. An MQTT 5 client whose
 * messages were refused for a full spool (an error with `spoolCode`
 * EDGEBRIDGE_SPOOL_DISK_FULL) gets a negative PUBACK instead, 0x97 (quota
 * exceeded), and keeps its connection. Agent publishes reject instead.
 */
export type BeforeAck = (messages: readonly BeforeAckMessage[]) => Promise<void>;

/** Decides what an authenticated client may do (see AccessControl). */
export interface ClientAccess {
  canSubscribe(principal: Principal, filter: string): Promise<Decision>;
  canPublish(principal: Principal, topic: string, retain: boolean): Decision | Promise<Decision>;
}

export interface EmbeddedBrokerOptions {
  /** Address to listen on, e.g. 0.0.0.0 (default port 1883; 0 picks a free one). */
  host: string;
  port: number;
  /**
   * Sockets open at once, authenticated or not; past it a client is refused
   * (CONNACK 3, server unavailable). Also the number of persistent sessions
   * kept for clients that are gone (past it one is ended: see SessionOwners). Default 1,000.
   */
  maxConnections?: number;
  /** Serve MQTT over TLS; with clientCa, clients must present a certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Larger packets close the client's connection; advertised to MQTT 5 clients. */
  maxPacketBytes: number;
  /**
   * The longest an MQTT 5 client's session is kept after it disconnects, in
   * seconds (at least 1); a longer session expiry interval is cut to it and
   * the CONNACK says so. Default DEFAULT_MAX_SESSION_EXPIRY_S.
   */
  maxSessionExpirySeconds?: number;
  authenticate: (username: string | undefined, password: Buffer | undefined) => Promise<AuthResult>;
  access: ClientAccess;
  beforeAck?: BeforeAck;
  log: Logger;
  metrics?: AgentMetrics;
}

const MAX_LOGGED = 128;
/** 2,000 idle clients cost the agent ~100 MB. */
export const DEFAULT_MAX_CONNECTIONS = 1000;
/** One day. */
export const DEFAULT_MAX_SESSION_EXPIRY_S = 86_400;
/**
 * Unacknowledged QoS 1/2 publishes an MQTT 5 client may have in flight,
 * advertised in the CONNACK (aedes does not enforce it): enough for the inbox
 * to batch spool appends, little enough to bound one client's share.
 */
const RECEIVE_MAXIMUM = 1024;
/** Shared subscriptions one client may hold; more get SUBACK 0x97 (quota exceeded). */
export const MAX_SHARED_SUBSCRIPTIONS_PER_CLIENT = 100;
/** PUBACK/PUBREC reason code 0x97: quota exceeded (MQTT 5). */
const QUOTA_EXCEEDED = 0x97;
/** The spool's error code for a full disk, carried as an UplinkRefusedError's spoolCode. */
const SPOOL_FULL_CODE = 'EDGEBRIDGE_SPOOL_DISK_FULL';
/** A socket that has not sent CONNECT by then is closed: it holds one of maxConnections. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Repeated warnings of one kind from one peer address: one line per this interval. */
const LOG_INTERVAL_MS = 10_000;
/** Refused sockets waiting for their CONNECT to be answered; more are closed without an answer. */
const MAX_REFUSING = 64;
/** How long a refused socket may take to send its CONNECT. */
const REFUSE_WAIT_MS = 2_000;
/** CONNACK, return code 3: server unavailable (the same bytes in MQTT 3.1 and 3.1.1). */
const CONNACK_SERVER_UNAVAILABLE = Buffer.from([0x20, 0x02, 0x00, 0x03]);
/** The MQTT 5 CONNACK with reason 0x88, server unavailable (no properties). */
const CONNACK_SERVER_UNAVAILABLE_V5 = Buffer.from([0x20, 0x03, 0x00, 0x88, 0x00]);

/** What the agent's publishes are ordered by: a device's topics (`edgebridge/v1/<ns>/<device>`), else the topic. */
function orderKey(topic: string): string {
  let at = -1;
  for (let level = 0; level < 4; level++) {
    at = topic.indexOf('/', at + 1);
    if (at === -1) return topic;
  }
  return topic.startsWith(`${TOPIC_ROOT}/`) ? topic.slice(0, at) : topic;
}

/** Who the agent's own sensor client is: every topic outside edgebridge/, no device's. */
const SENSOR_CLIENT: Principal = {
  name: 'agent:sensors',
  grants: [],
  sensorTopics: { publish: ['#'], subscribe: ['#'] },
};

/** Client-supplied text for a log line: bounded. */
function shown(text: string): string {
  return text.length > MAX_LOGGED ? `${text.slice(0, MAX_LOGGED)}…` : text;
}

export class EmbeddedBroker implements NodeBroker {
  readonly url: string;
  readonly port: number;
  readonly #aedes: Aedes;
  readonly #shared: SharedSubscriptions;
  readonly #server: Server;
  readonly #sockets: Set<Socket>;
  readonly #log: Logger;
  readonly #beforeAck: BeforeAck | undefined;
  readonly #metrics: AgentMetrics | undefined;
  /** The broker's ends of the agent's own sensor connections. */
  readonly #sensorConnections: WeakSet<Duplex>;
  #closing: Promise<void> | undefined;
  /**
   * Per device (or per topic outside the device scheme), the agent's latest
   * publish into aedes; the next one for it waits. Not one chain for all:
   * aedes calls back once a message is delivered, so one chain paces every
   * device by a round trip to the slowest subscriber (about 1,000 a second).
   */
  readonly #publishTails = new Map<string, Promise<unknown>>();

  /**
   * Starts aedes and the listener; rejects (nothing left running) if the port
   * cannot be bound, with a BrokerConfigError if another process holds it.
   */
  static async start(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    const principals = new WeakMap<Client, Principal>();
    const inboxes = new WeakMap<Client, PublishInbox>();
    /** Clients that sent an empty client id without a clean session: aedes would make one up. */
    const noClientId = new WeakSet<Client>();
    const sensorConnections = new WeakSet<Duplex>();
    const { log, metrics, access } = opts;
    const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    // The cap per kind holds against clients that change their names too.
    const limiter = new LogLimiter({ intervalMs: LOG_INTERVAL_MS, perKind: 10 });
    // One line per kind of refusal and peer address per interval, however fast a client retries.
    const refused = (
      client: Client,
      reason: string,
      fields: Record<string, unknown>,
      msg: string,
    ): void => {
      metrics?.brokerAuthFailures.inc({ reason });
      const peer = peerOf(client);
      logLimited(
        log,
        limiter,
        { kind: reason, peer },
        { clientId: shown(client.id), peer, ...fields },
        msg,
      );
    };
    /** Whether the client may subscribe to the filter; a refusal is counted and logged. */
    const maySubscribe = async (client: Client, filter: string): Promise<boolean> => {
      const principal = principals.get(client);
      if (principal === undefined) throw new Error('client not authenticated');
      const decision = await access.canSubscribe(principal, filter);
      if (decision.ok) return true;
      metrics?.brokerRefused.inc({ action: 'subscribe' });
      limiter.log(
        log,
        'warn',
        'subscription-refused',
        `${principal.name}\0${decision.reason}`,
        {
          clientId: shown(client.id),
          principal: principal.name,
          filter: shown(filter),
          reason: decision.reason,
        },
        'subscription refused',
      );
      return false;
    };
    const aedes = await Aedes.createBroker({
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Advertised in MQTT 5 CONNACKs; the size guard in front of aedes enforces the size.
      maximumPacketSize: opts.maxPacketBytes,
      receiveMaximum: RECEIVE_MAXIMUM,
      sessionExpiryIntervalLimit: opts.maxSessionExpirySeconds ?? DEFAULT_MAX_SESSION_EXPIRY_S,
      preConnect(client, packet, done) {
        // MQTT 3.1.1 [MQTT-3.1.3-8]: an empty client id needs a clean session.
        if (packet.clientId === '' && !packet.clean) noClientId.add(client);
        done(null, true);
      },
      authenticate(client, username, password, done) {
        if (sensorConnections.has(client.conn)) {
          // In-process: no password, and no socket anyone else can reach. Its id is held like any other.
          claimSession(client, SENSOR_CLIENT).then(
            (ok) => {
              if (ok) principals.set(client, SENSOR_CLIENT);
              done(ok ? null : authError(2, 'client id in use by another principal'), ok);
            },
            (err: unknown) => done(authError(3, (err as Error).message), false),
          );
          return;
        }
        if (client.id.startsWith('$edgebridge')) {
          done(authError(2, 'client id reserved'), false);
          return;
        }
        if (noClientId.has(client)) {
          refused(
            client,
            'client_id_empty',
            {},
            'client refused: an empty client id needs a clean session',
          );
          done(authError(2, 'an empty client id needs a clean session'), false);
          return;
        }
        opts.authenticate(username, password).then(
          async (result) => {
            if (!result.ok) {
              refused(
                client,
                REASONS[result.returnCode],
                {
                  ...(username !== undefined ? { username: shown(username) } : {}),
                  reason: result.reason,
                },
                'client refused',
              );
              done(authError(result.returnCode, result.reason), false);
              return;
            }
            if (!(await claimSession(client, result.principal))) {
              done(authError(2, 'client id in use by another principal'), false);
              return;
            }
            principals.set(client, result.principal);
            log.debug(
              { clientId: shown(client.id), principal: result.principal.name },
              'client connected',
            );
            done(null, true);
          },
          (err: unknown) => {
            refused(
              client,
              'unavailable',
              { err: (err as Error).message },
              'client refused: authentication failed',
            );
            done(authError(3, 'authentication failed'), false);
          },
        );
      },
      authorizePublish(client, packet, done) {
        // Stale wills of clients gone before a restart have no client; the agent never stores any.
        if (client === null) {
          done(new Error('no client'));
          return;
        }
        const principal = principals.get(client);
        if (principal === undefined) {
          done(new Error('client not authenticated'));
          return;
        }
        let inbox = inboxes.get(client);
        if (inbox === undefined) {
          inbox = publishInbox(client, principal, opts, limiter);
          inboxes.set(client, inbox);
        }
        inbox.add(packet, done);
      },
      authorizeSubscribe(client, subscription, done) {
        maySubscribe(client, subscription.topic).then(
          // A null subscription gives the client SUBACK 0x80 (failure), 0x87 (not authorised) in MQTT 5.
          (ok) => done(null, ok ? subscription : null),
          (err: unknown) => done(err as Error, null),
        );
      },
      authorizeForward(_client, packet) {
        metrics?.brokerMessagesOut.inc();
        return packet;
      },
    });
    // Used by aedes' authenticate, which runs only once aedes exists.
    const owners = new SessionOwners({
      maxStored: maxConnections,
      forget: async (clientId) => {
        try {
          await forgetSession(aedes, clientId);
        } catch (err) {
          log.warn(
            { clientId: shown(clientId), err: (err as Error).message },
            'persistent session could not be ended',
          );
          return;
        }
        metrics?.brokerSessionsEnded.inc();
        logLimited(
          log,
          limiter,
          { kind: 'session_ended', peer: '', level: 'info' },
          { clientId: shown(clientId) },
          'persistent session of a gone client ended: more are kept than --broker-max-connections',
        );
      },
    });
    // Holds the client id for the principal until the connection ends; false if another holds it.
    const claimSession = async (client: Client, principal: Principal): Promise<boolean> => {
      const claim = await owners.claim(client.id, principal.name);
      if (!claim.ok) {
        refused(
          client,
          REASONS[2],
          { principal: principal.name, heldBy: claim.heldBy },
          'client refused: the client id is held by another principal',
        );
        return false;
      }
      const release = (): void => owners.release(client.id, sessionKeepMs(client));
      if (client.conn.destroyed) release();
      else client.conn.once('close', release);
      return true;
    };
    const shared = new SharedSubscriptions({
      aedes,
      maxPerClient: MAX_SHARED_SUBSCRIPTIONS_PER_CLIENT,
      log,
    });
    const sharedPackets: SharedPacketsOptions = {
      shared,
      maySubscribe,
      refused: (client, topic, reason) => {
        metrics?.brokerRefused.inc({ action: 'subscribe' });
        const principal = principals.get(client)?.name ?? '';
        limiter.log(
          log,
          'warn',
          'subscription-refused',
          `${principal}\0${reason}`,
          { clientId: shown(client.id), principal, filter: shown(topic), reason },
          'subscription refused',
        );
      },
    };
    const sockets = new Set<Socket>();
    const server = createListener(
      aedes,
      { ...opts, maxConnections },
      { sockets, limiter, sharedPackets },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      shared.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      if ((err as { code?: unknown }).code === 'EADDRINUSE') {
        throw new BrokerConfigError(
          `node broker: ${opts.host}:${opts.port} is in use (another MQTT broker, such as ` +
            `Debian's mosquitto service?); choose another --broker-port, or use that broker ` +
            `with --broker-url`,
          { cause: err },
        );
      }
      throw err;
    }
    server.on('error', (err) => log.error({ err: err.message }, 'node broker listener failed'));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : opts.port;
    const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
    const scheme = opts.tls === undefined ? 'mqtt' : 'mqtts';
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    log.info({ host: opts.host, port, tls: opts.tls !== undefined }, 'node broker listening');
    return new EmbeddedBroker({
      aedes,
      shared,
      server,
      sockets,
      sensorConnections,
      url,
      port,
      opts,
    });
  }

  private constructor(parts: {
    aedes: Aedes;
    shared: SharedSubscriptions;
    server: Server;
    sockets: Set<Socket>;
    sensorConnections: WeakSet<Duplex>;
    url: string;
    port: number;
    opts: EmbeddedBrokerOptions;
  }) {
    this.#sensorConnections = parts.sensorConnections;
    this.#aedes = parts.aedes;
    this.#shared = parts.shared;
    this.#server = parts.server;
    this.#sockets = parts.sockets;
    this.url = parts.url;
    this.port = parts.port;
    this.#log = parts.opts.log;
    this.#beforeAck = parts.opts.beforeAck;
    this.#metrics = parts.opts.metrics;
  }

  async publish(
    topic: string,
    payload: Buffer | string,
    options: PublishOptions = {},
  ): Promise<void> {
    if (this.#closing !== undefined) throw new BrokerClosedError();
    const message: BeforeAckMessage = {
      topic,
      payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
      clientId: INTERNAL_CLIENT_ID,
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    };
    // beforeAck is called before any await, so the agent's messages reach it in the
    // order it publishes them; and a device's enter aedes in that order too (a retained
    // message takes longer to store than a plain one would to overtake it).
    const acked = this.#beforeAck?.([message]);
    const key = orderKey(topic);
    const tail = this.#publishTails.get(key);
    const enter = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const packet: PublishPacket = {
          cmd: 'publish',
          topic: message.topic,
          payload: message.payload,
          qos: message.qos,
          retain: message.retain,
          dup: false,
        };
        this.#aedes.publish(packet, (err) => (err ? reject(err) : resolve()));
      });
    // Nothing to wait for (the usual case, thousands a second): no promises in between.
    const published =
      tail === undefined && acked === undefined ? enter() : Promise.all([tail, acked]).then(enter);
    const tails = this.#publishTails;
    const forget = (): void => {
      if (tails.get(key) === settled) tails.delete(key);
    };
    const settled: Promise<void> = published.then(forget, forget);
    tails.set(key, settled);
    await published;
    this.#metrics?.brokerMessagesIn.inc({ source: 'agent' });
  }

  readonly connectSensorClient = (): Duplex => {
    if (this.#closing !== undefined) throw new BrokerClosedError();
    const [client, broker] = duplexPair();
    this.#sensorConnections.add(broker);
    this.#aedes.handle(broker);
    return client;
  };

  async subscribe(
    filter: string,
    onMessage: (message: BrokerMessage) => void,
  ): Promise<() => Promise<void>> {
    if (this.#closing !== undefined) throw new BrokerClosedError();
    const log = this.#log;
    const dollar = filter.startsWith('$');
    const deliver = (
      packet: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2; retain: boolean },
      done: () => void,
    ): void => {
      done();
      // The broker's own $SYS traffic is not for wildcard subscribers.
      if (!dollar && packet.topic.startsWith('$')) return;
      const message: BrokerMessage = {
        topic: packet.topic,
        payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        qos: packet.qos,
        retain: packet.retain,
      };
      // Never call a caller's callback synchronously; and its errors are its own.
      queueMicrotask(() => {
        try {
          onMessage(message);
        } catch (err) {
          log.error(
            { err: (err as Error).message, topic: message.topic },
            'node broker subscriber failed',
          );
        }
      });
    };
    await new Promise<void>((resolve) => this.#aedes.subscribe(filter, deliver, resolve));
    let subscribed = true;
    return () => {
      if (!subscribed) return Promise.resolve();
      subscribed = false;
      return new Promise<void>((resolve) => this.#aedes.unsubscribe(filter, deliver, resolve));
    };
  }

  /** Stops listening, disconnects every client and closes aedes. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#shared.close();
      await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
      await closed;
      this.#metrics?.brokerClients.set(0);
      this.#log.info('node broker closed');
    })();
    return this.#closing;
  }

  /** Like close(): aedes has no gentler way to stop, so both drop the clients at once. */
  async destroy(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await this.close();
  }
}

/**
 * The TCP or TLS listener that hands each client, behind the size guard, to
 * aedes; past maxConnections open sockets, a client gets CONNACK 3 instead.
 */
function createListener(
  aedes: Aedes,
  opts: EmbeddedBrokerOptions & { maxConnections: number },
  parts: { sockets: Set<Socket>; limiter: LogLimiter; sharedPackets: SharedPacketsOptions },
): Server {
  const { sockets, limiter } = parts;
  /** Sockets being refused (in `sockets` too, so that close() ends them; not counted against the cap). */
  const refusing = new Set<Socket>();
  const onSocket = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      refusing.delete(socket);
    });
    if (sockets.size - refusing.size > opts.maxConnections) {
      refuseConnection(socket, refusing, opts, limiter);
      return;
    }
    const client = aedes.handle(
      new SizeLimitedConnection(socket, opts.maxPacketBytes, advertiseSharedSubscriptions),
    );
    interceptSharedPackets(client, parts.sharedPackets);
  };
  const server =
    opts.tls === undefined
      ? createTcpServer(onSocket)
      : createTlsServer(
          {
            cert: opts.tls.cert,
            key: opts.tls.key,
            // A handshake also holds a socket: it gets the time a CONNECT gets.
            handshakeTimeout: CONNECT_TIMEOUT_MS,
            ...(opts.tls.clientCa !== undefined
              ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: true }
              : {}),
          },
          onSocket,
        );
  // Sockets still in their TLS handshake are not counted above; past this Node closes
  // new ones at once, so that no flood of any kind holds more.
  server.maxConnections = opts.maxConnections + MAX_REFUSING;
  server.on('drop', (dropped?: { remoteAddress?: string }) =>
    countRefusal(dropped?.remoteAddress ?? 'unknown', opts, limiter),
  );
  // A failed TLS handshake is the peer's problem: one line per peer per interval, no crash.
  server.on('tlsClientError', (err: Error, socket: Socket) => {
    opts.metrics?.brokerClientErrors.inc({ kind: 'tls' });
    const peer = socket.remoteAddress ?? 'unknown';
    logLimited(
      opts.log,
      limiter,
      { kind: 'tls', peer },
      { peer, err: err.message },
      'TLS handshake with a client failed',
    );
  });
  const counted = (): void => opts.metrics?.brokerClients.set(aedes.connectedClients);
  aedes.on('clientReady', counted);
  aedes.on('clientDisconnect', counted);
  const clientError = (client: Client, err: Error): void => {
    const kind =
      err instanceof PacketTooLargeError
        ? 'too_large'
        : err.message === CONNECT_TIMEOUT_MESSAGE
          ? 'connect_timeout'
          : 'protocol';
    opts.metrics?.brokerClientErrors.inc({ kind });
    // Resets and refusals logged already are noise; bad input is worth one line per
    // kind and peer per interval.
    const fields = { clientId: shown(client.id ?? ''), peer: peerOf(client), err: err.message };
    if (logged.has(err) || /ECONNRESET|EPIPE/.test(err.message))
      opts.log.debug(fields, 'client connection closed');
    else
      logLimited(
        opts.log,
        limiter,
        { kind, peer: fields.peer },
        fields,
        'client connection closed',
      );
  };
  aedes.on('clientError', clientError);
  aedes.on('connectionError', clientError);
  return server;
}

/** aedes' error for a socket that sent no CONNECT within connectTimeout. */
const CONNECT_TIMEOUT_MESSAGE = 'connect did not arrive in time';

/**
 * Refuses a socket over the cap: answers its CONNECT with CONNACK 3 (server
 * unavailable) and closes it. Only MAX_REFUSING wait for their CONNECT at
 * once, each for REFUSE_WAIT_MS; others are closed at once.
 */
function refuseConnection(
  socket: Socket,
  refusing: Set<Socket>,
  opts: EmbeddedBrokerOptions & { maxConnections: number },
  limiter: LogLimiter,
): void {
  countRefusal(socket.remoteAddress ?? 'unknown', opts, limiter);
  socket.on('error', () => undefined);
  if (refusing.size >= MAX_REFUSING) {
    socket.destroy();
    return;
  }
  refusing.add(socket);
  socket.setTimeout(REFUSE_WAIT_MS, () => socket.destroy());
  // Whatever it sends first is its CONNECT (or garbage): either way the answer is no.
  socket.once('data', (chunk: Buffer) =>
    socket.end(
      protocolLevel(chunk) === 5 ? CONNACK_SERVER_UNAVAILABLE_V5 : CONNACK_SERVER_UNAVAILABLE,
    ),
  );
}

/** The protocol level of the CONNECT at the start of `chunk` (5 for MQTT 5), if it is there. */
function protocolLevel(chunk: Buffer): number | undefined {
  let at = 1;
  while (at < 5 && ((chunk[at] ?? 0) & 0x80) !== 0) at += 1;
  at += 1;
  if (chunk.length < at + 2) return undefined;
  return chunk[at + 2 + chunk.readUInt16BE(at)];
}

/** A connection refused for the cap: counted, and logged once per peer per interval. */
function countRefusal(
  peer: string,
  opts: EmbeddedBrokerOptions & { maxConnections: number },
  limiter: LogLimiter,
): void {
  opts.metrics?.brokerConnectionsRefused.inc({ reason: 'limit' });
  logLimited(
    opts.log,
    limiter,
    { kind: 'connection_limit', peer },
    { peer, maxConnections: opts.maxConnections },
    'client refused: the node broker has --broker-max-connections open connections',
  );
}

/** Ends a client id's kept session in aedes' store: subscriptions, queued messages, will. */
async function forgetSession(aedes: Aedes, clientId: string): Promise<void> {
  // aedes' types leave its store out; these are the calls it makes itself for a clean session.
  const store = (aedes as unknown as { persistence: SessionStore }).persistence;
  const client = { id: clientId };
  await store.cleanSubscriptions(client);
  await store.cleanIncoming?.(client);
  await store.delWill(client);
  for await (const packet of store.outgoingStream(client))
    await store.outgoingClearMessageId(client, packet as { messageId?: number });
}

/** The part of aedes' session store (aedes-persistence) that ends a session. */
interface SessionStore {
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
  cleanIncoming?(client: { id: string }): Promise<unknown>;
  delWill(client: { id: string }): Promise<unknown>;
  outgoingStream(client: { id: string }): AsyncIterable<unknown>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
}

/** The address a client connects from, for log lines and their rate limit. */
function peerOf(client: Client): string {
  const conn: unknown = client.conn;
  return conn instanceof SizeLimitedConnection ? conn.peer : 'unknown';
}

/**
 * Logs a line unless one of this kind from this peer was logged within the
 * limiter's interval; the line says how many were left out before it.
 */
function logLimited(
  log: Logger,
  limiter: LogLimiter,
  event: { kind: string; peer: string; level?: 'warn' | 'info' },
  fields: Record<string, unknown>,
  msg: string,
): void {
  limiter.log(log, event.level ?? 'warn', event.kind, event.peer, fields, msg);
}

/** A client's publish inbox: its decisions, its beforeAck batches, and their log lines and counts. */
function publishInbox(
  client: Client,
  principal: Principal,
  opts: EmbeddedBrokerOptions,
  limiter: LogLimiter,
): PublishInbox {
  const { log, metrics, access, beforeAck } = opts;
  const v5 = client.version === 5;
  return new PublishInbox({
    decideEach: v5,
    decide: (packet) => access.canPublish(principal, packet.topic, packet.retain),
    refused: (packet, reason) => {
      metrics?.brokerRefused.inc({ action: 'publish' });
      // The kind is the line: MQTT 5 and 3.1.1 refusals say different things.
      limiter.log(
        log,
        'warn',
        v5 ? 'publish-refused-v5' : 'publish-refused',
        `${principal.name}\0${reason}`,
        {
          clientId: shown(client.id),
          principal: principal.name,
          topic: shown(packet.topic),
          reason,
        },
        v5
          ? 'publish refused (MQTT 5: PUBACK 0x87, connection kept)'
          : 'publish refused; closing the client connection',
      );
      return loggedError(new Error(`publish refused: ${reason}`));
    },
    ...(beforeAck !== undefined
      ? {
          store: (packets: readonly PublishPacket[]) =>
            beforeAck(
              packets.map((packet) => ({
                topic: packet.topic,
                payload: payloadOf(packet),
                clientId: client.id,
                qos: packet.qos,
                retain: packet.retain,
                ...publishPropertiesOf(packet.properties),
              })),
            ),
        }
      : {}),
    storeFailed: (packets, err) => {
      metrics?.brokerRefused.inc({ action: 'ack' }, packets.length);
      const fields = {
        clientId: shown(client.id),
        topic: shown(packets[0]?.topic ?? ''),
        messages: packets.length,
        err: (err as Error).message,
      };
      if (v5 && (err as { spoolCode?: unknown }).spoolCode === SPOOL_FULL_CODE) {
        limiter.log(
          log,
          'warn',
          'before-ack-quota',
          principal.name,
          fields,
          'message not acknowledged (spool full): MQTT 5 PUBACK 0x97 (quota exceeded)',
        );
        for (const packet of packets) answerQuotaExceeded(client, packet);
        return null;
      }
      limiter.log(
        log,
        'warn',
        'before-ack-failed',
        principal.name,
        fields,
        'message not acknowledged (beforeAck failed); closing the client connection so that it resends',
      );
      return loggedError(new Error(`beforeAck failed: ${(err as Error).message}`));
    },
    passed: (count) => metrics?.brokerMessagesIn.inc({ source: 'client' }, count),
  });
}

/**
 * Answers an MQTT 5 publish with reason code 0x97 (quota exceeded) and keeps
 * aedes from publishing it. aedes 2.0.0-beta.1 answers every authorizePublish
 * error with 0x87, so the answer is written here, and the message is marked
 * the way aedes marks one it refused itself (`_notAuthorized`, read by its
 * enqueuePublish; the version is pinned for this).
 */
function answerQuotaExceeded(client: Client, packet: PublishPacket): void {
  (packet as PublishPacket & { _notAuthorized?: boolean })._notAuthorized = true;
  if (packet.qos === 0 || packet.messageId === undefined || client.conn.destroyed) return;
  mqttPacket.writeToStream(
    {
      cmd: packet.qos === 1 ? 'puback' : 'pubrec',
      messageId: packet.messageId,
      reasonCode: QUOTA_EXCEEDED,
    },
    client.conn,
    { protocolVersion: 5 },
  );
}

/**
 * How long a client's session outlives its connection, for SessionOwners:
 * MQTT 5 says so (aedes has cut it to the broker's maximum); MQTT 3.1.1
 * sessions are kept unless clean.
 */
function sessionKeepMs(client: Client): number {
  if (client.version !== 5) return client.clean ? 0 : Infinity;
  const seconds = client.sessionExpiryInterval;
  return seconds >= 0xffffffff ? Infinity : seconds * 1000;
}

/** Errors whose refusal was logged where it was decided; the connection closing is not news. */
const logged = new WeakSet<Error>();

/** Marks an error as logged already, and returns it. */
function loggedError(err: Error): Error {
  logged.add(err);
  return err;
}

const REASONS = {
  2: 'client_id_in_use',
  3: 'unavailable',
  4: 'bad_credentials',
  5: 'not_authorized',
} as const;

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  // aedes types the code as a const enum, which type stripping cannot inline: the numbers are its values.
  return loggedError(Object.assign(new Error(message), { returnCode })) as AuthenticateError;
}

function payloadOf(packet: PublishPacket): Buffer {
  const p = packet.payload;
  return Buffer.isBuffer(p) ? p : Buffer.from(p);
}
