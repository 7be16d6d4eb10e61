// Child process for the crash test: produces and consumes on a spool until it
// is killed. Lines on stdout (a pipe, written synchronously on Linux):
//   ready            the spool is open
//   A <id> <id> ...  these ids' append resolved (durable)
//   D <id> <id> ...  these ids were handed out by read (acknowledged next)
// Ids are `<round>.<n>` with n increasing; keys cycle over a few devices.
import { openSpool, type SpoolStore } from '../../../src/spool/index.ts';
import type { SpoolInput } from '../../../src/spool/index.ts';

const [store, dir, roundArg] = process.argv.slice(2);
if (store === undefined || dir === undefined || roundArg === undefined) {
  throw new Error('usage: crash-child.ts <store> <dir> <round>');
}
const round = Number(roundArg);
const KEYS = 7;

const spool = await openSpool({
  store: store as SpoolStore,
  dir,
  maxBytes: 64 * 1024 * 1024,
  onFull: 'block',
  sync: 'group',
  intervalMs: 2,
  maxMessages: 200,
});
process.stdout.write('ready\n');

async function produce(): Promise<void> {
  for (let n = 0; ;) {
    const size = 1 + Math.floor(Math.random() * 20);
    const batch: SpoolInput[] = [];
    for (let i = 0; i < size; i++, n++) {
      batch.push({
        id: `${round}.${n}`,
        key: `k${n % KEYS}`,
        topic: 'crash/data',
        payload: Buffer.alloc(64 + (n % 100), n % 251),
        timestamp: Date.now(),
      });
    }
    await spool.append(batch);
    process.stdout.write(`A ${batch.map((m) => m.id ?? '').join(' ')}\n`);
  }
}

async function consume(): Promise<void> {
  for (;;) {
    const batch = await spool.read(25);
    if (batch.messages.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 3));
      continue;
    }
    process.stdout.write(`D ${batch.messages.map((m) => m.id).join(' ')}\n`);
    await spool.ack(batch);
  }
}

await Promise.all([produce(), consume()]);
