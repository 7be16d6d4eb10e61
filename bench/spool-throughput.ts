// Spool throughput on this machine's disk: durable enqueue (group commit and
// sync always), dequeue + ack, and replay of a 1,000,000-message backlog after
// reopen, with the replaying process's peak RSS. 256-byte payloads throughout.
//   node bench/spool-throughput.ts            (BACKLOG=200000 for a quicker run)
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { openSpool, type Spool, type SpoolInput } from '../src/spool/index.ts';

const PAYLOAD = Buffer.alloc(256, 0x5a);
const TOPIC = 'edgebridge/v1/default/sensor/data';
const GROUP = { sync: 'group', intervalMs: 10, maxMessages: 1000 } as const;
const WINDOW = 250; // messages an uplink keeps in flight
const MB = 1024 * 1024;

function message(n: number): SpoolInput {
  return { key: `sensor-${n % 64}`, topic: TOPIC, payload: PAYLOAD, timestamp: Date.now() };
}

function open(dir: string, sync: 'group' | 'always' = 'group'): Promise<Spool> {
  const base = { dir, maxBytes: 2 * 1024 * MB, onFull: 'block' } as const;
  return openSpool(sync === 'group' ? { ...base, ...GROUP } : { ...base, sync: 'always' });
}

/** Appends `count` messages in calls of `perCall`, keeping up to `outstanding` calls unresolved. */
async function enqueue(
  spool: Spool,
  count: number,
  perCall: number,
  outstanding: number,
): Promise<number> {
  const started = performance.now();
  // Appends resolve in order, so waiting for the oldest keeps `outstanding` in flight.
  const pending: Promise<void>[] = [];
  let oldest = 0;
  for (let n = 0; n < count; n += perCall) {
    const batch: SpoolInput[] = [];
    for (let i = n; i < Math.min(count, n + perCall); i++) batch.push(message(i));
    pending.push(spool.append(batch));
    if (pending.length - oldest >= outstanding) await pending[oldest++];
  }
  await Promise.all(pending.slice(oldest));
  return performance.now() - started;
}

/** Reads `WINDOW` at a time and acknowledges each batch (acks commit in groups). */
async function dequeue(spool: Spool): Promise<{ count: number; ms: number }> {
  const started = performance.now();
  let count = 0;
  let acked: Promise<void> = Promise.resolve();
  for (;;) {
    const batch = await spool.read(WINDOW);
    if (batch.messages.length === 0) break;
    count += batch.messages.length;
    acked = spool.ack(batch);
  }
  await acked;
  return { count, ms: performance.now() - started };
}

interface Row {
  what: string;
  count: number;
  ms: number;
  /** CPU time of this process per message, µs (the disk's share is in ms, not here). */
  cpuUs?: number;
  note: string;
}

/** Runs `fn` and returns its result with the CPU time it took (µs). */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const before = process.cpuUsage();
  const result = await fn();
  const used = process.cpuUsage(before);
  return [result, used.user + used.system];
}

/** Median latency of appending 4 KiB + fsync in `dir`: about what one commit waits for. */
function fsyncLatencyMs(dir: string): number {
  const file = path.join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      const started = performance.now();
      writeSync(fd, block, 0, block.length, i * block.length); // grows the file, as commits do
      fsyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(file);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1] ?? NaN;
}

async function main(): Promise<void> {
  const backlog = Number(process.env.BACKLOG ?? 1_000_000);
  const root = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-spool-'));
  const rows: Row[] = [];
  try {
    rows.push({ what: 'fsync', count: 0, ms: fsyncLatencyMs(root), note: '' });
    const cases: [string, 'group' | 'always', number, number, number, string][] = [
      ['enqueue, group commit', 'group', 200_000, 1, 10_000, '1 msg per call'],
      ['enqueue, group commit', 'group', 200_000, 100, 100, '100 msgs per call'],
      ['enqueue, sync always', 'always', 2_000, 1, 1, '1 msg per call'],
      ['enqueue, sync always', 'always', 50_000, 100, 1, '100 msgs per call'],
    ];
    for (const [i, [what, sync, count, perCall, outstanding, note]] of cases.entries()) {
      const spool = await open(path.join(root, `case-${i}`), sync);
      const [ms, cpu] = await timed(() => enqueue(spool, count, perCall, outstanding));
      rows.push({ what, count, ms, cpuUs: cpu / count, note });
      if (i === 1) {
        const [out, readCpu] = await timed(() => dequeue(spool));
        const note = `read(${WINDOW}), acks not awaited`;
        rows.push({ what: 'dequeue + ack', ...out, cpuUs: readCpu / out.count, note });
      }
      await spool.close();
    }
    const dir = path.join(root, 'backlog');
    {
      const spool = await open(dir);
      const [ms, cpu] = await timed(() => enqueue(spool, backlog, 1000, 20));
      rows.push({
        what: 'fill backlog',
        count: backlog,
        ms,
        cpuUs: cpu / backlog,
        note: '1000 msgs per call',
      });
      await spool.close();
    }
    const fileMb = statSync(path.join(dir, 'spool.db')).size / MB;
    const replay = await replayInChild(dir);
    rows.push({
      what: 'reopen',
      count: backlog,
      ms: replay.openMs,
      note: `RSS +${(replay.openRss / MB).toFixed(1)} MB at open; file ${fileMb.toFixed(0)} MB`,
    });
    rows.push({
      what: 'replay backlog (read + ack)',
      count: replay.count,
      ms: replay.ms,
      cpuUs: replay.cpuUs,
      note: `peak RSS ${(replay.maxRss / MB).toFixed(0)} MB (${(replay.baseRss / MB).toFixed(0)} MB before open)`,
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  console.log(
    `spool throughput: node:sqlite, 256-byte payloads, ${tmpdir()}, node ${process.version}; ` +
      `fsync ${fsyncMsShown(rows)} ms median; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  console.log(
    `${'case'.padEnd(28)} ${'messages'.padStart(9)} ${'seconds'.padStart(8)} ${'msgs/s'.padStart(9)} ${'cpu µs/msg'.padStart(10)}  note`,
  );
  for (const r of rows) {
    if (r.what === 'fsync') continue;
    const rate =
      r.what === 'reopen' ? '-' : Math.round(r.count / (r.ms / 1000)).toLocaleString('en');
    const cpu = r.cpuUs === undefined ? '-' : r.cpuUs.toFixed(1);
    console.log(
      `${r.what.padEnd(28)} ${String(r.count).padStart(9)} ${(r.ms / 1000).toFixed(2).padStart(8)} ${rate.padStart(9)} ${cpu.padStart(10)}  ${r.note}`,
    );
  }
}

function fsyncMsShown(rows: Row[]): string {
  return (rows.find((r) => r.what === 'fsync')?.ms ?? NaN).toFixed(2);
}

interface Replay {
  count: number;
  ms: number;
  cpuUs: number;
  openMs: number;
  baseRss: number;
  openRss: number;
  maxRss: number;
}

/** Replays in a fresh process, so that its peak RSS is the replay's alone. */
function replayInChild(dir: string): Promise<Replay> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, '--replay', dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (status) => {
      if (status === 0) resolve(JSON.parse(out) as Replay);
      else reject(new Error(`replay child exited ${String(status)}`));
    });
  });
}

async function replay(dir: string): Promise<void> {
  const baseRss = process.memoryUsage.rss();
  const started = performance.now();
  const spool = await open(dir);
  const openMs = performance.now() - started;
  const openRss = process.memoryUsage.rss() - baseRss;
  const [out, cpu] = await timed(() => dequeue(spool));
  await spool.close();
  const result: Replay = {
    count: out.count,
    ms: out.ms,
    cpuUs: cpu / out.count,
    openMs,
    baseRss,
    openRss,
    maxRss: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(result));
}

const [flag, dir] = process.argv.slice(2);
if (flag === '--replay' && dir !== undefined) await replay(dir);
else await main();
