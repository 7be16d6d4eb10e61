// Child process for the backlog memory test, so that its RSS is measured alone.
//   fill <store> <dir> <count>   appends `count` small messages, then closes
//   drain <store> <dir>          opens, reads and acknowledges everything; prints
//                                {"count","rssBeforeOpen","rssAfterOpen","maxRss",
//                                 "liveBeforeOpen","maxLive"} (bytes)
// "Live" is heap used plus external memory right after a full GC: unlike RSS, it
// does not depend on how lazily this machine's V8 and malloc give memory back.
import { openSpool, type SpoolStore } from '../../../src/spool/index.ts';
import type { SpoolInput } from '../../../src/spool/index.ts';

const [mode, store, dir, countArg] = process.argv.slice(2);
if (store === undefined || dir === undefined) {
  throw new Error('usage: backlog-child.ts fill|drain <store> <dir> [count]');
}
const CALL = 10_000;

if (mode === 'fill') {
  const count = Number(countArg);
  const spool = await openSpool({
    store: store as SpoolStore,
    dir,
    maxBytes: 1024 * 1024 * 1024,
    onFull: 'block',
    sync: 'group',
    intervalMs: 50,
    maxMessages: CALL,
  });
  const payload = Buffer.alloc(16, 7);
  for (let n = 0; n < count; n += CALL) {
    const batch: SpoolInput[] = [];
    for (let i = n; i < Math.min(count, n + CALL); i++) {
      batch.push({ id: `m${i}`, key: `k${i % 100}`, topic: 't', payload, timestamp: i });
    }
    await spool.append(batch);
  }
  await spool.close();
} else if (mode === 'drain') {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('drain needs --expose-gc');
  const live = (): number => {
    gc();
    const u = process.memoryUsage();
    return u.heapUsed + u.external;
  };
  const liveBeforeOpen = live();
  const rssBeforeOpen = process.memoryUsage.rss();
  const spool = await openSpool({
    store: store as SpoolStore,
    dir,
    maxBytes: 1024 * 1024 * 1024,
    onFull: 'block',
    sync: 'group',
    maxMessages: 2500,
  });
  const rssAfterOpen = process.memoryUsage.rss();
  let count = 0;
  let last = -1;
  let maxLive = live();
  let acked: Promise<void> = Promise.resolve();
  for (;;) {
    // An uplink's window of messages in flight; acks commit in groups behind it.
    const batch = await spool.read(250);
    if (batch.messages.length === 0) break;
    for (const m of batch.messages) {
      const n = Number(m.id.slice(1));
      if (n !== last + 1) throw new Error(`out of order: ${m.id} after m${last}`);
      last = n;
    }
    count += batch.messages.length;
    if (count % 50_000 === 0) maxLive = Math.max(maxLive, live());
    acked = spool.ack(batch);
  }
  await acked;
  await spool.close();
  const maxRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(
    `${JSON.stringify({ count, rssBeforeOpen, rssAfterOpen, maxRss, liveBeforeOpen, maxLive })}\n`,
  );
} else {
  throw new Error(`unknown mode ${String(mode)}`);
}
