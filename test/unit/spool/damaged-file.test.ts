// A damaged spool file, in every way a disk, a crash or a person can damage it:
// the spool opens anyway, keeps the damaged file aside, says so once, counts it,
// hands on the records that still verify (in order per device), and serves on.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import {
  SpoolDirUnwritableError,
  openSpool,
  type Spool,
  type SpoolMessage,
  type SpoolOptions,
} from '../../../src/spool/index.ts';
import { Scratch, drain, garbleFiles, message } from './helpers.ts';

const DB = 'spool.db';
const KEYS = ['dev-a', 'dev-b', 'dev-c'];
/** Messages written per damaged file; every tenth is large enough to spill to overflow pages. */
const N = 3000;
/** The oldest ones, acknowledged before the damage: they must not come back from free pages. */
const ACKED = 600;
const OPTIONS = {
  maxBytes: 64 * 1024 * 1024,
  onFull: 'block',
  sync: 'group',
  intervalMs: 2,
  maxMessages: 500,
} as const satisfies Omit<Extract<SpoolOptions, { sync: 'group' }>, 'dir'>;

const scratch = new Scratch();
const open: Spool[] = [];
after(() => {
  scratch.removeAll();
});
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

interface Logged {
  level: 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

async function openAt(dir: string): Promise<{ spool: Spool; logged: Logged[] }> {
  const logged: Logged[] = [];
  const spool = await openSpool({
    ...OPTIONS,
    dir,
    log: {
      warn: (fields, msg) => void logged.push({ level: 'warn', fields, msg }),
      error: (fields, msg) => void logged.push({ level: 'error', fields, msg }),
    },
  });
  open.push(spool);
  return { spool, logged };
}

/** A closed spool holding messages ACKED..N-1 of three devices (0..ACKED-1 were acknowledged). */
async function filled(): Promise<{ dir: string; sent: Map<string, SpoolMessage> }> {
  const dir = scratch.dir('damaged');
  const spool = await openSpool({ ...OPTIONS, dir });
  const sent = new Map<string, SpoolMessage>();
  for (let n = 0; n < N; n += 100) {
    const batch = Array.from({ length: 100 }, (_, i) => {
      const k = n + i;
      const key = KEYS[k % KEYS.length] ?? 'dev-a';
      const size = k % 10 === 0 ? 9000 + k : 200 + (k % 50);
      return message(key, k, { payload: Buffer.alloc(size, `${key} ${k};`) });
    });
    await spool.append(batch);
    for (const m of batch) sent.set(m.id ?? '', { ...m, id: m.id ?? '' });
  }
  let acked = 0;
  while (acked < ACKED) {
    const batch = await spool.read(Math.min(100, ACKED - acked));
    await spool.ack(batch);
    acked += batch.messages.length;
  }
  await spool.close();
  return { dir, sent };
}

function nOf(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}

/**
 * Opens the damaged spool and checks what every kind of damage must give:
 * one error line, the file aside, the counters, only sound messages, FIFO per
 * device, none acknowledged before (unless `ackedMayReturn`), and a spool that
 * takes and hands out new messages. Returns how many were recovered.
 */
async function expectRecovered(
  dir: string,
  sent: Map<string, SpoolMessage>,
  opts: { damaged?: boolean; ackedMayReturn?: boolean } = {},
): Promise<{ recovered: number; lost: number }> {
  const { spool, logged } = await openAt(dir);
  const damaged = opts.damaged ?? true;
  const errors = logged.filter((l) => l.level === 'error');
  const stats = spool.stats();
  if (damaged) {
    assert.equal(errors.length, 1, `one error line, got ${JSON.stringify(logged)}`);
    const line = errors[0];
    assert.match(line?.msg ?? '', /spool file damaged/);
    assert.equal(line?.fields.file, path.join(dir, DB));
    assert.equal(typeof line?.fields.reason, 'string');
    assert.match(String(line?.fields.movedTo), /spool\.db\.damaged-\d{8}T\d{6}Z$/);
    const aside = readdirSync(dir).filter((f) => /^spool\.db\.damaged-\d{8}T\d{6}Z$/.test(f));
    assert.equal(aside.length, 1, `the damaged file kept aside: ${readdirSync(dir).join(', ')}`);
    assert.equal(stats.damagedFiles, 1);
    // No content in the line: no payload, topic or id.
    assert.doesNotMatch(JSON.stringify(line), /dev-[abc]|payload|edgebridge\/v1/);
  } else {
    assert.equal(errors.length, 0, JSON.stringify(errors));
    assert.equal(stats.damagedFiles, 0);
  }
  const got = await drain(spool, 500);
  const last = new Map<string, number>();
  for (const m of got) {
    const original = sent.get(m.id);
    assert.ok(original !== undefined, `unknown message ${m.id}`);
    assert.deepEqual(m, original, `message ${m.id} as appended`);
    const n = nOf(m.id);
    if (opts.ackedMayReturn !== true) assert.ok(n >= ACKED, `acknowledged ${m.id} came back`);
    assert.ok((last.get(m.key) ?? -1) < n, `out of order for ${m.key} at ${m.id}`);
    last.set(m.key, n);
  }
  if (damaged) assert.equal(stats.salvaged, got.length);
  // It serves on: new messages are taken and handed out after the salvaged ones.
  await spool.append([message('dev-a', 999_999)]);
  assert.deepEqual(
    (await drain(spool)).map((m) => m.id),
    ['dev-a-999999'],
  );
  await spool.close();
  return { recovered: got.length, lost: stats.lost };
}

function report(kind: string, r: { recovered: number; lost: number }): void {
  console.log(`salvage ${kind}: ${r.recovered} of ${N - ACKED} recovered, ${r.lost} counted lost`);
}

function overwrite(file: string, at: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
}

describe('a damaged spool file', () => {
  it('zeroed header: moved aside, every unacknowledged record salvaged, none acknowledged before', async () => {
    const { dir, sent } = await filled();
    overwrite(path.join(dir, DB), 0, Buffer.alloc(100));
    const r = await expectRecovered(dir, sent);
    report('zeroed header', r);
    assert.equal(r.recovered, N - ACKED);
    assert.equal(r.lost, 0);
  });

  it('zeroed first page: the header and the schema gone, the records still salvaged (acknowledged ones may come again)', async () => {
    const { dir, sent } = await filled();
    overwrite(path.join(dir, DB), 0, Buffer.alloc(4096));
    const r = await expectRecovered(dir, sent, { ackedMayReturn: true });
    report('zeroed first page', r);
    assert.ok(r.recovered >= N - ACKED, `${r.recovered} recovered`);
  });

  it('zeroed first page after seqs started again: a deleted row left on a free page never hides a live one', async () => {
    const dir = scratch.dir('damaged');
    const big = (key: string, n: number): ReturnType<typeof message> =>
      message(key, n, { payload: Buffer.alloc(300 + (n % 7), n) });
    // Epoch 1: written, all acknowledged; the restart starts the seqs again at 1.
    const first = await openSpool({ ...OPTIONS, dir });
    for (let n = 0; n < 3000; n += 100) {
      await first.append(Array.from({ length: 100 }, (_, i) => big('old', n + i)));
    }
    await drain(first, 500);
    await first.close();
    const second = await openSpool({ ...OPTIONS, dir });
    const live = Array.from({ length: 1500 }, (_, n) => big(KEYS[n % 3] ?? 'dev-a', n));
    for (let n = 0; n < live.length; n += 100) await second.append(live.slice(n, n + 100));
    await second.close();
    overwrite(path.join(dir, DB), 0, Buffer.alloc(4096));
    const { spool } = await openAt(dir);
    const got = await drain(spool, 500);
    const ids = new Set(got.map((m) => m.id));
    const missing = live.filter((m) => !ids.has(m.id ?? ''));
    console.log(
      `salvage after seqs started again: ${live.length - missing.length} of ${live.length} live recovered, ${got.length - (live.length - missing.length)} old ones came again`,
    );
    assert.deepEqual(
      missing.map((m) => m.id),
      [],
    );
  });

  for (const [name, fraction] of [
    ['at a tenth', 0.1],
    ['in half', 0.5],
    ['at nine tenths', 0.9],
  ] as const) {
    it(`truncated ${name}: what is left before the cut is salvaged`, async () => {
      const { dir, sent } = await filled();
      const file = path.join(dir, DB);
      truncateSync(file, Math.floor(statSync(file).size * fraction) + 123);
      const r = await expectRecovered(dir, sent);
      report(`truncated ${name}`, r);
      if (fraction >= 0.5) assert.ok(r.recovered > 0, 'nothing salvaged');
      assert.ok(r.lost > 0, 'the lost records are counted');
    });
  }

  it('truncated just after the header: a fresh spool, nothing to salvage', async () => {
    const { dir, sent } = await filled();
    truncateSync(path.join(dir, DB), 100);
    const r = await expectRecovered(dir, sent);
    report('truncated after the header', r);
    assert.equal(r.recovered, 0);
  });

  it('random bytes overwritten in pages: the records that verify are salvaged, the rest counted', async () => {
    const { dir, sent } = await filled();
    const file = path.join(dir, DB);
    const size = statSync(file).size;
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    // 40 runs of 64 random bytes at random places past the first page.
    for (let i = 0; i < 40; i++) {
      const bytes = Buffer.alloc(64);
      for (let j = 0; j < bytes.length; j++) bytes[j] = random() & 0xff;
      overwrite(file, 4096 + (random() % (size - 4096 - 64)), bytes);
    }
    const r = await expectRecovered(dir, sent, { ackedMayReturn: false });
    report('random overwrites', r);
    assert.ok(r.recovered >= (N - ACKED) / 2, `${r.recovered} recovered`);
  });

  it('not SQLite at all (text, garbage, empty of meaning): moved aside, a fresh spool', async () => {
    for (const damage of [
      (dir: string) => writeFileSync(path.join(dir, DB), 'hello: this is a YAML file\n'),
      (dir: string) => garbleFiles(dir),
    ]) {
      const { dir, sent } = await filled();
      damage(dir);
      const r = await expectRecovered(dir, sent);
      assert.equal(r.recovered, 0);
    }
  });

  it('a directory, a FIFO or a symbolic link where the file should be: moved aside, a fresh spool', async () => {
    for (const make of [
      (file: string) => mkdirSync(file),
      (file: string) => spawnSync('mkfifo', [file]),
      (file: string) => spawnSync('ln', ['-s', '/dev/zero', file]),
    ]) {
      const dir = scratch.dir('damaged');
      const file = path.join(dir, DB);
      make(file);
      const r = await expectRecovered(dir, new Map());
      assert.equal(r.recovered, 0);
    }
  });

  it('a damaged rollback journal beside a sound file: every record is there', async () => {
    for (const damage of [
      (j: string) => writeFileSync(j, Buffer.alloc(8192, 0xa5)),
      (j: string) => truncateSync(j, 7),
      (j: string) => {
        rmSync(j, { force: true });
        mkdirSync(j);
      },
    ]) {
      const { dir, sent } = await filled();
      const journal = path.join(dir, `${DB}-journal`);
      damage(journal);
      const isDir = statSync(journal).isDirectory();
      const r = await expectRecovered(dir, sent, { damaged: isDir });
      assert.equal(r.recovered, N - ACKED);
    }
  });

  it('a hot rollback journal torn mid-way after a crash mid-transaction: opens, salvages, serves', async () => {
    const { dir, sent } = await filled();
    // A writer that dies inside a large transaction leaves a hot journal and a
    // main file already holding some of the uncommitted pages.
    const crash = spawnSync(
      process.execPath,
      [
        '-e',
        `const { DatabaseSync } = require('node:sqlite');
         const db = new DatabaseSync(${JSON.stringify(path.join(dir, DB))});
         db.exec('PRAGMA journal_mode = PERSIST; PRAGMA cache_size = 8; BEGIN');
         db.exec("UPDATE messages SET payload = zeroblob(length(payload))");
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(crash.signal, 'SIGKILL', crash.stderr);
    const journal = path.join(dir, `${DB}-journal`);
    const size = statSync(journal).size;
    assert.ok(size > 100_000, `no hot journal (${size} bytes)`);
    truncateSync(journal, Math.floor(size / 2));
    const before = readFileSync(path.join(dir, DB)).length;
    assert.ok(before > 0);
    const { spool, logged } = await openAt(dir);
    const got = await drain(spool, 500);
    for (const m of got) assert.deepEqual(m, sent.get(m.id), `message ${m.id} as appended`);
    const stats = spool.stats();
    console.log(
      `salvage torn hot journal: ${got.length} of ${N - ACKED} recovered, ${stats.lost} counted lost, damaged files ${stats.damagedFiles}, corrupt records ${stats.corrupt}`,
    );
    assert.ok(logged.filter((l) => l.level === 'error').length <= 1);
    await spool.append([message('dev-a', 999_999)]);
    assert.deepEqual(
      (await drain(spool)).map((m) => m.id),
      ['dev-a-999999'],
    );
  });

  it('a file this process may not read: moved aside (nothing salvaged, said so), a fresh spool', async () => {
    const { dir } = await filled();
    chmodSync(path.join(dir, DB), 0o000);
    // Root reads any file: the child runs without the capabilities that allow it.
    const child = spawnSync(
      'capsh',
      [
        '--drop=cap_dac_override,cap_dac_read_search',
        '--',
        '-c',
        `"${process.execPath}" "${path.join(import.meta.dirname, 'damaged-child.ts')}" "${dir}"`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout) as { stats: Record<string, number>; logged: Logged[] };
    assert.equal(out.stats.damagedFiles, 1);
    assert.equal(out.stats.salvaged, 0);
    const errors = out.logged.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.fields.reason), /unable to open|permission|denied/i);
    assert.match(String(errors[0]?.fields.unreadable), /EACCES/);
    assert.equal(
      readdirSync(dir).filter((f) => /^spool\.db\.damaged-\d{8}T\d{6}Z$/.test(f)).length,
      1,
    );
  });

  it('a directory that cannot be written at all: SpoolDirUnwritableError, nothing moved', async () => {
    const { dir } = await filled();
    const before = readdirSync(dir).sort();
    spawnSync('mount', ['--bind', dir, dir]);
    try {
      const ro = spawnSync('mount', ['-o', 'remount,ro,bind', dir], { encoding: 'utf8' });
      assert.equal(ro.status, 0, ro.stderr);
      // The file is sound, but nothing could be appended, nor a damaged file moved aside.
      await assert.rejects(
        openAt(dir),
        (err) =>
          err instanceof SpoolDirUnwritableError && err.code === 'EDGEBRIDGE_SPOOL_DIR_UNWRITABLE',
      );
      await assert.rejects(
        openAt(path.join(dir, 'sub')),
        (err) => err instanceof SpoolDirUnwritableError,
      );
    } finally {
      // A spool opened by mistake holds the mount busy.
      for (const s of open.splice(0)) s.destroy();
      spawnSync('umount', [dir]);
    }
    assert.deepEqual(readdirSync(dir).sort(), before);
  });
});
