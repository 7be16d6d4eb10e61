import { randomUUID } from 'node:crypto';
import { sleep } from '../../src/util/backoff.ts';
import { LogLimiter } from '../../src/util/log-limiter.ts';
import type { DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../handler.ts';
import { interfaceAddresses } from '../interface-address.ts';
import { Wakeup } from '../wakeup.ts';
import { CameraSessions } from './camera-sessions.ts';
import { CameraTable, type Refusal } from './camera-table.ts';
import { credentialsBook } from './credentials.ts';
import { MAX_UNICAST_ADDRESSES, parseOnvifDetails, type OnvifDetails } from './details.ts';
import { cameraFilter } from './filter.ts';
import { defaultInterfaces } from './interfaces.ts';
import { expandTargets } from './ipv4.ts';
import { readNeighbours } from './neighbours.ts';
import { toDevice } from './to-device.ts';
import { parseWsd, probeMessage, type WsdEndpoint } from './wsd-message.ts';
import { openWsdSockets, type WsdSockets } from './wsd-socket.ts';

/** Each probe is sent again this long after the first, against UDP loss. */
const REPEAT_MS = 100;
/** A camera not heard of for this many probe rounds (plus a probe timeout) is gone. */
export const MISSED_ROUNDS = 3;
/** ProbeMatches are accepted for this many of our latest probes (a slow camera answers late). */
const OUR_PROBES = 4;
/** Debug lines about cameras heard and gone, over all cameras, per minute (a peer may flap Hello and Bye). */
const CAMERA_LINES_PER_MINUTE = 200;
/** A burst of datagrams (100 cameras answering) makes one list, not a hundred. */
const BATCH_MS = 50;

/** The first list waits at most this long for the cameras' SOAP descriptions. */
const FIRST_DESCRIBE_WAIT_MS = 5000;

/**
 * ONVIF cameras found by WS-Discovery (shared: every node on a segment sees
 * them): probes for NetworkVideoTransmitter once per interval, twice against
 * loss, by multicast on each interface and by unicast to unicastTargets;
 * a Hello lists a camera at once and a Bye removes it at once (the agent
 * applies the grace period); a camera unheard of for MISSED_ROUNDS rounds goes.
 * Each listed camera is then described over SOAP (camera-sessions.ts), which
 * adds properties and labels to its device and follows its events.
 */
export const onvifHandler: DiscoveryHandler<OnvifDetails> = {
  name: 'onvif',
  shared: true,
  validate: parseOnvifDetails,
  discover,
};

const REFUSED: Record<Refusal, string> = {
  'not-a-camera': 'WS-Discovery endpoint ignored: its Types lack NetworkVideoTransmitter',
  'no-usable-xaddr': 'ONVIF camera ignored: no http(s) XAddr with an IPv4 address',
  'table-full': 'ONVIF camera ignored: too many cameras',
};

async function* discover(
  details: OnvifDetails,
  ctx: HandlerContext,
): AsyncGenerator<DiscoveredDevice[]> {
  const names = details.interfaces ?? defaultInterfaces();
  const addresses = interfaceAddresses(names, 'EDGEBRIDGE_ONVIF_INTERFACE');
  const targets = expandTargets(details.unicastTargets, MAX_UNICAST_ADDRESSES);
  const selected = cameraFilter(details);
  const table = new CameraTable();
  const wakeup = new Wakeup();
  const limiter = new LogLimiter();
  // One debug line per camera per minute for each of found and Bye.
  const cameraLines = new LogLimiter({ perKind: CAMERA_LINES_PER_MINUTE });
  // At most one line per peer per minute, whatever it sends; the next one counts what was suppressed.
  const warn = (peer: string, fields: Record<string, unknown>, msg: string): void =>
    limiter.log(ctx.log, 'warn', 'peer', peer, { peer, ...fields }, msg);
  const ours: string[] = [];
  let failure: Error | undefined;
  // The SOAP side: each listed camera described (and its events followed) with its credentials.
  const credentials = credentialsBook(ctx.secrets);
  for (const problem of credentials.problems)
    ctx.log.warn({ problem }, 'ONVIF credentials entry ignored');
  if (credentials.problems.length > 0) ctx.reportProblem?.(credentials.problems.join('; '));
  let described = 0;
  const sessions = new CameraSessions({
    signal: ctx.signal,
    log: ctx.log,
    publish: ctx.publish,
    credentials,
    changed: () => {
      described++;
      wakeup.notify();
    },
  });

  const heard = (e: WsdEndpoint, from: string, how: 'hello' | 'probe-match'): void => {
    const r = table.seen(e, from, Date.now());
    if (!r.ok) warn(from, { endpoint: e.address.slice(0, 128) }, REFUSED[r.refusal]);
    else if (r.added)
      cameraLines.log(
        ctx.log,
        'debug',
        'found',
        e.address,
        { endpoint: e.address, peer: from, how },
        'ONVIF camera found',
      );
  };
  const datagram = (data: Buffer, from: string): void => {
    const r = parseWsd(data);
    if (!r.ok) {
      warn(from, { reason: r.reason }, 'WS-Discovery datagram ignored');
      return;
    }
    const m = r.message;
    if (m.kind === 'probe-matches') {
      if (m.relatesTo === undefined || !ours.includes(m.relatesTo)) {
        warn(from, {}, 'ProbeMatches not for one of our probes ignored');
        return;
      }
      for (const match of m.matches) heard(match, from, 'probe-match');
    } else if (m.kind === 'hello') {
      heard(m.endpoint, from, 'hello');
    } else if (m.kind === 'bye') {
      if (table.bye(m.address))
        cameraLines.log(
          ctx.log,
          'debug',
          'bye',
          m.address,
          { endpoint: m.address, peer: from },
          'ONVIF camera said Bye',
        );
    } else {
      return; // others' probes, resolves: not for us
    }
    wakeup.notify();
  };

  // One line per list that differs from the one before, with at most a few ids each way.
  let listedIds = new Set<string>();
  const logChanges = (devices: DiscoveredDevice[]): void => {
    const ids = new Set(devices.map((d) => d.id));
    const added = [...ids].filter((id) => !listedIds.has(id));
    const removed = [...listedIds].filter((id) => !ids.has(id));
    listedIds = ids;
    if (added.length + removed.length === 0) return;
    ctx.log.info(
      {
        cameras: ids.size,
        added: added.length,
        removed: removed.length,
        ids: [...added.slice(0, 5), ...removed.slice(0, 5).map((id) => `-${id}`)],
      },
      'ONVIF cameras listed',
    );
  };

  let sockets: WsdSockets | undefined;
  try {
    sockets = await openWsdSockets(addresses, targets.length > 0, {
      datagram,
      warning(err) {
        limiter.log(
          ctx.log,
          'warn',
          'socket',
          '',
          { err: err.message.slice(0, 200) },
          'WS-Discovery socket problem',
        );
      },
      failed(err) {
        failure = err;
        wakeup.notify();
      },
    });
    if (!sockets.listening)
      ctx.reportProblem?.(
        `cannot listen on UDP port 3702: Hello and Bye are not heard, probes go on`,
      );
    ctx.log.info(
      { interfaces: names, unicastTargets: targets.length, listening: sockets.listening },
      'WS-Discovery probing',
    );
    const period = ctx.intervalSeconds * 1000;
    const timeout = details.probeTimeoutSeconds * 1000;
    const maxAge = MISSED_ROUNDS * period + timeout;
    const firstList = Date.now() + timeout;
    let nextProbe = 0;
    let repeatAt = Infinity;
    let probe = '';
    let listed = -1;
    let listedDescribed = 0;
    let first = true;

    while (!ctx.signal.aborted) {
      const now = Date.now();
      if (failure !== undefined) throw failure;
      if (now >= nextProbe) {
        const id = `urn:uuid:${randomUUID()}`;
        probe = probeMessage(id);
        ours.push(id);
        if (ours.length > OUR_PROBES) ours.shift();
        sockets.send(probe, targets);
        repeatAt = now + REPEAT_MS;
        nextProbe = now + period;
      } else if (now >= repeatAt) {
        sockets.send(probe, targets);
        repeatAt = Infinity;
      }
      table.expire(now - maxAge);
      if (
        (first && now >= firstList) ||
        (!first && (table.version !== listed || described !== listedDescribed))
      ) {
        const isFirst = first;
        first = false;
        listed = table.version;
        const macs =
          details.macAddresses === undefined ? new Map<string, string>() : await readNeighbours();
        const cameras = table.cameras().filter((c) => selected(c, (ip) => macs.get(ip)));
        // Only cameras the filters select are called (and given credentials).
        sessions.update(cameras);
        // The first list waits a little for descriptions: `scan` shows only the first list.
        if (isFirst) await firstDescriptions(sessions, ctx.signal);
        listedDescribed = described;
        const devices = cameras.map((c) => sessions.extend(c, toDevice(c)));
        logChanges(devices);
        yield devices;
        continue;
      }
      const oldest = table.oldest();
      const wakeAt = Math.min(
        nextProbe,
        repeatAt,
        first ? firstList : Infinity,
        oldest === undefined ? Infinity : oldest + maxAge + 1,
      );
      await wakeup.wait(Math.max(wakeAt - Date.now(), 0), ctx.signal);
      // Let the rest of a burst arrive before listing.
      if (!ctx.signal.aborted && !first) await new Promise((r) => setTimeout(r, BATCH_MS).unref());
    }
  } finally {
    await Promise.all([sockets?.close(), sessions.close()]);
  }
}

/** Resolves when every camera's first description is done, after FIRST_DESCRIBE_WAIT_MS, or on abort. */
async function firstDescriptions(sessions: CameraSessions, signal: AbortSignal): Promise<void> {
  await Promise.race([
    sessions.settled(),
    sleep(FIRST_DESCRIBE_WAIT_MS, signal).catch(() => undefined),
  ]);
}
