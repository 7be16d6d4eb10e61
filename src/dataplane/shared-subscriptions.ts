// MQTT 5 shared subscriptions on the node broker, which aedes 2.0.0-beta.1
// lacks. Each (group, filter) with members is one subscription of ours in
// aedes; a message it matches goes to one member, round robin, passing over
// members with a full window of unacknowledged messages while another has room.
// A member that disconnects leaves every group, and the QoS 1 messages it had
// not acknowledged go to another member of their group [MQTT-4.8.2]. Shared
// subscriptions last as long as the connection: a kept session does not keep them.
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';

/** What a member asked for in its SUBSCRIBE. */
export interface MemberOptions {
  qos: 0 | 1 | 2;
  /** Retain As Published: keep the retain flag of the message. */
  rap: boolean;
  /** The Subscription Identifier to echo on each message. */
  subscriptionId: number | undefined;
}

/** A message as aedes' emitter hands it to subscribers. */
export interface SharedMessage {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties?: Record<string, unknown>;
  messageExpiry?: number;
}

/** The parts of an aedes 2.0.0-beta.1 client (pinned) that deliver to it; not in its types. */
interface DeliveringClient extends Client {
  deliver0(packet: OutgoingPacket, done: () => void): void;
  deliverQoS(packet: OutgoingPacket, done: () => void): void;
  /** The next packet identifier aedes gives a message to this client. */
  _nextId: number;
}

interface OutgoingPacket extends SharedMessage {
  cmd: 'publish';
  dup: false;
  /** aedes drops a second copy of one (brokerId, brokerCounter) to a client: ours have their own. */
  brokerId: string;
  brokerCounter: number;
  messageId?: number;
}

/** The part of aedes' session store that keeps a persistent session's outgoing messages. */
interface OutgoingStore {
  outgoingEnqueue(sub: { clientId: string }, packet: OutgoingPacket): Promise<unknown>;
  outgoingClearMessageId(client: Client, packet: { messageId: number }): Promise<unknown>;
}

interface Member {
  client: DeliveringClient;
  options: MemberOptions;
}

interface Group {
  key: string;
  filter: string;
  members: Member[];
  /** Where round robin looks first. */
  next: number;
  listener: (packet: SharedMessage, done: () => void) => void;
  /** Settles once aedes routes the filter to the listener. */
  subscribed: Promise<void>;
}

interface ClientState {
  /** Group keys this client is a member of. */
  groups: Set<string>;
  /** QoS 1 messages sent and not yet acknowledged, by packet identifier. */
  unacked: Map<number, { key: string; message: SharedMessage }>;
}

export interface SharedSubscriptionsOptions {
  aedes: Aedes;
  /** Shared subscriptions one client may hold; past it a SUBSCRIBE gets 0x97 (quota exceeded). */
  maxPerClient: number;
  log: Logger;
}

/** Unacknowledged messages kept per member for hand-off (and its window, if the client's is larger). */
const MAX_UNACKED = 256;
/** MQTT packet identifiers run 1..65535. */
const MAX_PACKET_ID = 65535;

/** Shared subscription groups of the node broker and their delivery. */
export class SharedSubscriptions {
  readonly #aedes: Aedes;
  readonly #store: OutgoingStore;
  readonly #maxPerClient: number;
  readonly #log: Logger;
  readonly #groups = new Map<string, Group>();
  readonly #clients = new Map<Client, ClientState>();
  readonly #brokerId: string;
  #counter = 0;
  #closed = false;

  constructor(opts: SharedSubscriptionsOptions) {
    this.#aedes = opts.aedes;
    // aedes' types leave its store out.
    this.#store = (opts.aedes as unknown as { persistence: OutgoingStore }).persistence;
    this.#maxPerClient = opts.maxPerClient;
    this.#log = opts.log;
    this.#brokerId = `${opts.aedes.id}/$share`;
  }

  /**
   * Makes the client a member of (group, filter), or updates its options if it
   * is one; false if that would pass maxPerClient. Resolves once messages are routed.
   */
  async join(
    client: Client,
    group: string,
    filter: string,
    options: MemberOptions,
  ): Promise<boolean> {
    if (this.#closed || client.closed || client.conn.destroyed) return false;
    const key = `${group}\u0000${filter}`;
    let state = this.#clients.get(client);
    if (state?.groups.has(key) === true) {
      const member = this.#groups.get(key)?.members.find((m) => m.client === client);
      if (member !== undefined) member.options = options;
      return true;
    }
    if ((state?.groups.size ?? 0) >= this.#maxPerClient) return false;
    if (state === undefined) {
      state = { groups: new Set(), unacked: new Map() };
      this.#clients.set(client, state);
      client.conn.once('close', () => this.#gone(client));
    }
    state.groups.add(key);
    let entry = this.#groups.get(key);
    if (entry === undefined) entry = this.#addGroup(key, filter);
    entry.members.push({ client: client as DeliveringClient, options });
    this.#log.debug({ clientId: client.id, group, filter }, 'shared subscription joined');
    await entry.subscribed;
    return true;
  }

  /** Takes the client out of (group, filter); false if it was not a member. */
  leave(client: Client, group: string, filter: string): boolean {
    const key = `${group}\u0000${filter}`;
    const state = this.#clients.get(client);
    if (state?.groups.delete(key) !== true) return false;
    this.#removeMember(key, client);
    return true;
  }

  /** The client acknowledged a message (PUBACK): it is no longer handed to another member. */
  acknowledged(client: Client, messageId: number | undefined): void {
    if (messageId !== undefined) this.#clients.get(client)?.unacked.delete(messageId);
  }

  /** Forgets every group; later joins are refused. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const group of this.#groups.values()) this.#unsubscribe(group);
    this.#groups.clear();
    this.#clients.clear();
  }

  #addGroup(key: string, filter: string): Group {
    const group: Group = {
      key,
      filter,
      members: [],
      next: 0,
      listener: (packet, done) => this.#dispatch(group, packet, done),
      subscribed: Promise.resolve(),
    };
    group.subscribed = new Promise((resolve) =>
      this.#aedes.subscribe(filter, group.listener, resolve),
    );
    this.#groups.set(key, group);
    return group;
  }

  #removeMember(key: string, client: Client): void {
    const group = this.#groups.get(key);
    if (group === undefined) return;
    const at = group.members.findIndex((m) => m.client === client);
    if (at < 0) return;
    group.members.splice(at, 1);
    if (at < group.next) group.next -= 1;
    if (group.members.length > 0) return;
    this.#groups.delete(key);
    this.#unsubscribe(group);
  }

  #unsubscribe(group: Group): void {
    void group.subscribed.then(() =>
      this.#aedes.unsubscribe(group.filter, group.listener, () => undefined),
    );
  }

  /** A member's connection ended: it leaves its groups, and its unacknowledged QoS 1 messages go to others. */
  #gone(client: Client): void {
    const state = this.#clients.get(client);
    if (state === undefined) return;
    this.#clients.delete(client);
    for (const key of state.groups) this.#removeMember(key, client);
    if (this.#closed || state.unacked.size === 0) return;
    let handed = 0;
    for (const [messageId, { key, message }] of state.unacked) {
      // A kept session would get the message again on reconnecting: another member has it now.
      if (!client.clean)
        this.#store.outgoingClearMessageId(client, { messageId }).catch(() => undefined);
      const group = this.#groups.get(key);
      if (group === undefined) continue;
      this.#dispatch(group, message, () => undefined);
      handed += 1;
    }
    this.#log.info(
      { clientId: client.id, handed, lost: state.unacked.size - handed },
      'shared subscription member gone: its unacknowledged messages sent to other members',
    );
  }

  /** Sends a message to one member of the group, if it has any. */
  #dispatch(group: Group, message: SharedMessage, done: () => void): void {
    const member = this.#pick(group);
    if (member === undefined) {
      done();
      return;
    }
    const { client, options } = member;
    const qos = Math.min(message.qos, options.qos) as 0 | 1 | 2;
    const packet: OutgoingPacket = {
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos,
      retain: options.rap && message.retain,
      dup: false,
      brokerId: this.#brokerId,
      brokerCounter: ++this.#counter,
    };
    if (options.subscriptionId !== undefined)
      packet.properties = { ...message.properties, subscriptionIdentifier: options.subscriptionId };
    else if (message.properties !== undefined) packet.properties = message.properties;
    if (message.messageExpiry !== undefined) packet.messageExpiry = message.messageExpiry;
    if (qos === 0) {
      client.deliver0(packet, done);
      return;
    }
    packet.messageId = takePacketId(client);
    const state = this.#clients.get(client);
    if (qos === 1 && state !== undefined && state.unacked.size < MAX_UNACKED)
      state.unacked.set(packet.messageId, { key: group.key, message });
    // aedes sends a kept session's messages from its store, and keeps them there until acknowledged
    // (all but retained ones, which it writes straight away).
    if (client.clean || packet.retain) {
      client.deliverQoS(packet, done);
      return;
    }
    this.#store.outgoingEnqueue({ clientId: client.id }, packet).then(
      () => client.deliverQoS(packet, done),
      (err: unknown) => {
        this.#log.warn(
          { clientId: client.id, err: (err as Error).message },
          'shared subscription message could not be queued for its member',
        );
        done();
      },
    );
  }

  /** The next member in turn whose window has room; the next connected one if none has. */
  #pick(group: Group): Member | undefined {
    const { members } = group;
    let fallback: number | undefined;
    for (let i = 0; i < members.length; i++) {
      const at = (group.next + i) % members.length;
      const member = members[at];
      if (member === undefined || member.client.closed) continue;
      fallback ??= at;
      const unacked = this.#clients.get(member.client)?.unacked.size ?? 0;
      if (unacked < Math.min(member.client.receiveMaximum, MAX_UNACKED)) {
        group.next = (at + 1) % members.length;
        return member;
      }
    }
    if (fallback === undefined) return undefined;
    group.next = (fallback + 1) % members.length;
    return members[fallback];
  }
}

/** A packet identifier from the client's own sequence, so that it never collides with aedes' choices. */
function takePacketId(client: DeliveringClient): number {
  const id = client._nextId;
  client._nextId = id >= MAX_PACKET_ID ? 1 : id + 1;
  return id;
}
