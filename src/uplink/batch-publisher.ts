// QoS 1 PUBLISH packets for a whole batch, encoded into one buffer and written
// to the socket in one write, while mqtt.js still allocates the packet ids and
// matches the PUBACKs to their callbacks. mqtt.js's own publish() clones every
// packet into its outgoing store, logs each step and writes packet by packet:
// most of the sender's CPU and garbage went there.
import { Readable } from 'node:stream';
import type { IStore, MqttClient, PacketCallback } from 'mqtt';
import {
  measurePublish,
  writePublish,
  type Measured,
  type PublishFields,
} from './publish-encoder.ts';

/** PUBACK reason code for "Packet too large" (what the broker would answer). */
export const PACKET_TOO_LARGE = 0x95;
/** PUBACK reason code for "Topic Name invalid". */
export const TOPIC_NAME_INVALID = 0x90;

/** Called once per message: its PUBACK (err undefined), a refusal or a lost connection. */
export type PublishDone = (err: (Error & { code?: number }) | undefined) => void;

export interface OutgoingPublish extends PublishFields {
  done: PublishDone;
}

/**
 * An outgoing store that keeps nothing: the spool is the sender's store (it
 * resends from there after a reconnect), so mqtt.js need not copy packets. Its
 * `del` answers every id so that mqtt.js hands each PUBACK to its callback.
 */
export class NoStore implements IStore {
  put(_packet: unknown, cb: () => void): this {
    cb();
    return this;
  }
  createStream(): ReturnType<IStore['createStream']> {
    // mqtt.js types this as readable-stream's Readable; it only reads from it.
    return Readable.from([]) as unknown as ReturnType<IStore['createStream']>;
  }
  del(packet: { messageId?: number | undefined }, cb: PacketCallback): this {
    cb(undefined, { cmd: 'puback', messageId: packet.messageId ?? 0 });
    return this;
  }
  get(_packet: unknown, cb: PacketCallback): this {
    cb(new Error('no packets are stored'));
    return this;
  }
  close(cb: () => void): void {
    cb();
  }
}

/** The parts of MqttClient this reaches into (stable across mqtt 5.x). */
interface ClientInternals {
  messageIdProvider: { allocate(): number | null; deallocate(id: number): void };
  outgoing: Record<number, { volatile: boolean; cmd: string; cb: PublishDone }>;
  stream: { write(chunk: Buffer): boolean };
}

/**
 * Sends `messages` as QoS 1 PUBLISHes in one socket write. A message larger
 * than `maxPacketSize` is not sent, nor one whose topic MQTT cannot carry
 * (over 65,535 bytes with the cloud prefix): its `done` gets a "packet too
 * large" or "topic name invalid" error soon (never from inside the call).
 * Throws if the client has no free packet id (the caller's window must stay
 * below 65535).
 */
export function publishBatch(
  client: MqttClient,
  messages: readonly OutgoingPublish[],
  maxPacketSize: number,
): void {
  const c = client as unknown as ClientInternals;
  const measured: (Measured | undefined)[] = [];
  const unsendable: { done: PublishDone; code: number; message: string }[] = [];
  let total = 0;
  for (const m of messages) {
    let size: Measured;
    try {
      size = measurePublish(m);
    } catch (err) {
      measured.push(undefined);
      unsendable.push({
        done: m.done,
        code: TOPIC_NAME_INVALID,
        message: `Publish error: ${(err as Error).message}`,
      });
      continue;
    }
    if (size.size > maxPacketSize) {
      measured.push(undefined);
      unsendable.push({
        done: m.done,
        code: PACKET_TOO_LARGE,
        message: 'Publish error: Packet too large',
      });
      continue;
    }
    measured.push(size);
    total += size.size;
  }
  if (total > 0) {
    const buf = Buffer.allocUnsafe(total);
    let at = 0;
    messages.forEach((m, i) => {
      const size = measured[i];
      if (size === undefined) return;
      const messageId = c.messageIdProvider.allocate();
      if (messageId === null) throw new Error('no MQTT packet id is free');
      at = writePublish(buf, at, m, size, messageId);
      c.outgoing[messageId] = { volatile: false, cmd: 'publish', cb: m.done };
    });
    c.stream.write(buf);
  }
  if (unsendable.length === 0) return;
  // Never from inside the call, like a PUBACK.
  queueMicrotask(() => {
    for (const { done, code, message } of unsendable) {
      const err: Error & { code?: number } = new Error(message);
      err.code = code;
      done(err);
    }
  });
}
