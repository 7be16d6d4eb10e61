// The node broker inside the agent: aedes (MQTT 3.1 and 3.1.1) on a TCP or TLS
// listener, with our authentication, per-device access control, a packet-size
// guard in front of the parser, and the beforeAck hook that lets the uplink
// make a message durable before the client gets its PUBACK.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import type { AgentMetrics } from '../metrics.ts';
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
import { LogLimiter } from '../util/log-limiter.ts';
import { PublishInbox } from './publish-inbox.ts';

/** A message on its way into the broker, before anyone has it or is told it was taken. */
export interface BeforeAckMessage {
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
 * it resends after reconnecting; one line is logged. Agent publishes reject instead.
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
  /** Serve MQTT over TLS; with clientCa, clients must present a certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Larger packets close the client's connection. */
  maxPacketBytes: number;
  authenticate: (username: string | undefined, password: Buffer | undefined) => Promise<AuthResult>;
  access: ClientAccess;
  beforeAck?: BeforeAck;
  log: Logger;
  metrics?: AgentMetrics;
}

const MAX_LOGGED = 128;

/** Client-supplied text for a log line: bounded. */
function shown(text: string): string {
  return text.length > MAX_LOGGED ? `${text.slice(0, MAX_LOGGED)}…` : text;
}

export class EmbeddedBroker implements NodeBroker {
  readonly url: string;
  readonly port: number;
  readonly #aedes: Aedes;
  readonly #server: Server;
  readonly #sockets: Set<Socket>;
  readonly #log: Logger;
  readonly #beforeAck: BeforeAck | undefined;
  readonly #metrics: AgentMetrics | undefined;
  #closing: Promise<void> | undefined;
  /** The agent's latest publish into aedes; the next waits for it. */
  #publishTail: Promise<unknown> = Promise.resolve();

  /**
   * Starts aedes and the listener; rejects (nothing left running) if the port
   * cannot be bound, with a BrokerConfigError if another process holds it.
   */
  static async start(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    const principals = new WeakMap<Client, Principal>();
    const inboxes = new WeakMap<Client, PublishInbox>();
    const { log, metrics, access } = opts;
    // A client that retries at once would otherwise repeat its line as fast as it can;
    // the cap per kind holds against clients that change their names too.
    const limiter = new LogLimiter({ perKind: 10 });
    const aedes = await Aedes.createBroker({
      authenticate(client, username, password, done) {
        if (client.id.startsWith('$edgebridge')) {
          done(authError(2, 'client id reserved'), false);
          return;
        }
        opts.authenticate(username, password).then(
          (result) => {
            if (result.ok) {
              principals.set(client, result.principal);
              log.debug(
                { clientId: shown(client.id), principal: result.principal.name },
                'client connected',
              );
              done(null, true);
              return;
            }
            metrics?.brokerAuthFailures.inc({ reason: REASONS[result.returnCode] });
            limiter.log(
              log,
              'warn',
              'client-refused',
              `${shown(username ?? '')}\0${result.reason}`,
              {
                clientId: shown(client.id),
                ...(username !== undefined ? { username: shown(username) } : {}),
                reason: result.reason,
              },
              'client refused',
            );
            done(authError(result.returnCode, result.reason), false);
          },
          (err: unknown) => {
            metrics?.brokerAuthFailures.inc({ reason: 'unavailable' });
            limiter.log(
              log,
              'warn',
              'authentication-failed',
              '',
              { clientId: shown(client.id), err: (err as Error).message },
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
        const principal = principals.get(client);
        if (principal === undefined) {
          done(new Error('client not authenticated'), null);
          return;
        }
        access.canSubscribe(principal, subscription.topic).then(
          (decision) => {
            if (decision.ok) {
              done(null, subscription);
              return;
            }
            metrics?.brokerRefused.inc({ action: 'subscribe' });
            limiter.log(
              log,
              'warn',
              'subscription-refused',
              `${principal.name}\0${decision.reason}`,
              {
                clientId: shown(client.id),
                principal: principal.name,
                filter: shown(subscription.topic),
                reason: decision.reason,
              },
              'subscription refused',
            );
            // A null subscription gives the client SUBACK return code 0x80 (failure).
            done(null, null);
          },
          (err: unknown) => done(err as Error, null),
        );
      },
      authorizeForward(_client, packet) {
        metrics?.brokerMessagesOut.inc();
        return packet;
      },
    });
    const sockets = new Set<Socket>();
    const server = createListener(aedes, opts, sockets, limiter);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
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
    return new EmbeddedBroker({ aedes, server, sockets, url, port, opts });
  }

  private constructor(parts: {
    aedes: Aedes;
    server: Server;
    sockets: Set<Socket>;
    url: string;
    port: number;
    opts: EmbeddedBrokerOptions;
  }) {
    this.#aedes = parts.aedes;
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
    // order it publishes them; and they enter aedes in that order too (a retained
    // message takes longer to store than a plain one would to overtake it).
    const acked = this.#beforeAck === undefined ? Promise.resolve() : this.#beforeAck([message]);
    const published = Promise.all([this.#publishTail, acked]).then(
      () =>
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
        }),
    );
    this.#publishTail = published.catch(() => undefined);
    await published;
    this.#metrics?.brokerMessagesIn.inc({ source: 'agent' });
  }

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

/** The TCP or TLS listener that hands each client, behind the size guard, to aedes. */
function createListener(
  aedes: Aedes,
  opts: EmbeddedBrokerOptions,
  sockets: Set<Socket>,
  limiter: LogLimiter,
): Server {
  const onSocket = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(new SizeLimitedConnection(socket, opts.maxPacketBytes));
  };
  const server =
    opts.tls === undefined
      ? createTcpServer(onSocket)
      : createTlsServer(
          {
            cert: opts.tls.cert,
            key: opts.tls.key,
            ...(opts.tls.clientCa !== undefined
              ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: true }
              : {}),
          },
          onSocket,
        );
  // A failed TLS handshake is the peer's problem: one line, no crash.
  server.on('tlsClientError', (err: Error) => {
    opts.metrics?.brokerClientErrors.inc({ kind: 'tls' });
    limiter.log(
      opts.log,
      'warn',
      'tls-failed',
      '',
      { err: err.message },
      'TLS handshake with a client failed',
    );
  });
  const counted = (): void => opts.metrics?.brokerClients.set(aedes.connectedClients);
  aedes.on('clientReady', counted);
  aedes.on('clientDisconnect', counted);
  const clientError = (client: Client, err: Error): void => {
    const tooLarge = err instanceof PacketTooLargeError;
    opts.metrics?.brokerClientErrors.inc({ kind: tooLarge ? 'too_large' : 'protocol' });
    // Resets and refusals logged already are noise; bad input is worth one line.
    const quiet = logged.has(err) || /ECONNRESET|EPIPE/.test(err.message);
    const fields = { clientId: shown(client.id ?? ''), err: err.message };
    if (quiet) opts.log.debug(fields, 'client connection closed');
    else
      limiter.log(
        opts.log,
        'warn',
        'client-error',
        fields.clientId,
        fields,
        'client connection closed',
      );
  };
  aedes.on('clientError', clientError);
  aedes.on('connectionError', clientError);
  return server;
}

/** A client's publish inbox: its decisions, its beforeAck batches, and their log lines and counts. */
function publishInbox(
  client: Client,
  principal: Principal,
  opts: EmbeddedBrokerOptions,
  limiter: LogLimiter,
): PublishInbox {
  const { log, metrics, access, beforeAck } = opts;
  return new PublishInbox({
    decide: (packet) => access.canPublish(principal, packet.topic, packet.retain),
    refused: (packet, reason) => {
      metrics?.brokerRefused.inc({ action: 'publish' });
      limiter.log(
        log,
        'warn',
        'publish-refused',
        `${principal.name}\0${reason}`,
        {
          clientId: shown(client.id),
          principal: principal.name,
          topic: shown(packet.topic),
          reason,
        },
        'publish refused; closing the client connection',
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
              })),
            ),
        }
      : {}),
    storeFailed: (packets, err) => {
      metrics?.brokerRefused.inc({ action: 'ack' }, packets.length);
      limiter.log(
        log,
        'warn',
        'before-ack-failed',
        principal.name,
        {
          clientId: shown(client.id),
          topic: shown(packets[0]?.topic ?? ''),
          messages: packets.length,
          err: (err as Error).message,
        },
        'message not acknowledged (beforeAck failed); closing the client connection so that it resends',
      );
      return loggedError(new Error(`beforeAck failed: ${(err as Error).message}`));
    },
    passed: (count) => metrics?.brokerMessagesIn.inc({ source: 'client' }, count),
  });
}

/** Errors whose refusal was logged where it was decided; the connection closing is not news. */
const logged = new WeakSet<Error>();

/** Marks an error as logged already, and returns it. */
function loggedError(err: Error): Error {
  logged.add(err);
  return err;
}

const REASONS = { 3: 'unavailable', 4: 'bad_credentials', 5: 'not_authorized' } as const;

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  // aedes types the code as a const enum, which type stripping cannot inline: the numbers are its values.
  return loggedError(Object.assign(new Error(message), { returnCode })) as AuthenticateError;
}

function payloadOf(packet: PublishPacket): Buffer {
  const p = packet.payload;
  return Buffer.isBuffer(p) ? p : Buffer.from(p);
}
