// UDP sockets for WS-Discovery over IPv4: a listener on port 3702 joined to
// 239.255.255.250 on each chosen interface (Hello, Bye), one sender per
// interface bound to that interface's address (multicast probes leave by
// that interface only, and their ProbeMatches come back to it), and one more
// for unicast probes when there are targets. Every socket error becomes a
// callback: an 'error' event without a listener would end the process.
import { createSocket, type Socket } from 'node:dgram';
import { WSD_GROUP, WSD_PORT } from './wsd-message.ts';

/** Receive buffer of a probe socket (the kernel caps it at net.core.rmem_max). */
const RECV_BUFFER = 1 << 20;

export interface WsdSocketEvents {
  datagram(data: Buffer, from: string): void;
  /** Something that does not stop discovery: a send that failed, no Hello listener. */
  warning(err: Error): void;
  /** A sender failed after it was bound (interface gone); discovery cannot go on. */
  failed(err: Error): void;
}

export interface WsdSockets {
  /** Whether Hello and Bye can be heard (port 3702 could be bound). */
  readonly listening: boolean;
  /** Sends `message` to the multicast group on every interface and to each unicast target. */
  send(message: string, unicastTargets: readonly string[]): void;
  /** Idempotent. */
  close(): Promise<void>;
}

function bind(address: string, port: number, reuseAddr: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr });
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: false }, () => {
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}

/** Opens the sockets for interfaces with IPv4 `addresses`; resolves once they are bound. */
export async function openWsdSockets(
  addresses: readonly string[],
  withUnicast: boolean,
  events: WsdSocketEvents,
): Promise<WsdSockets> {
  const sockets: Socket[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  const watch = (s: Socket, onError: (err: Error) => void): void => {
    s.on('message', (data, rinfo) => {
      if (!closed) events.datagram(data, rinfo.address);
    });
    s.on('error', (err) => {
      if (!closed) onError(err);
    });
  };
  try {
    const senders: Socket[] = [];
    for (const address of addresses) {
      const s = await bind(address, 0, false);
      sockets.push(s);
      s.setMulticastInterface(address);
      // One hop: a probe is for the link, as WS-Discovery means it.
      s.setMulticastTTL(1);
      s.setMulticastLoopback(false);
      // A hundred cameras answer one probe within half a second; the default buffer (208 KB) drops some.
      s.setRecvBufferSize(RECV_BUFFER);
      watch(s, (err) => events.failed(err));
      senders.push(s);
    }
    let unicast: Socket | undefined;
    if (withUnicast) {
      unicast = await bind('0.0.0.0', 0, false);
      sockets.push(unicast);
      unicast.setRecvBufferSize(RECV_BUFFER);
      watch(unicast, (err) => events.failed(err));
    }
    let listening = false;
    try {
      const listener = await bind('0.0.0.0', WSD_PORT, true);
      sockets.push(listener);
      for (const address of addresses) listener.addMembership(WSD_GROUP, address);
      watch(listener, (err) => events.warning(err));
      listening = true;
    } catch (err) {
      events.warning(err as Error);
    }
    const sent = (err: Error | null): void => {
      if (err !== null && !closed) events.warning(err);
    };
    return {
      listening,
      send(message, targets) {
        if (closed) return;
        const data = Buffer.from(message);
        for (const s of senders) s.send(data, WSD_PORT, WSD_GROUP, sent);
        for (const t of targets) unicast?.send(data, WSD_PORT, t, sent);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
