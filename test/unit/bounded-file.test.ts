import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BoundedFileError,
  readBoundedFile,
  readBoundedFileSync,
  SYSFS_ATTRIBUTE_BYTES,
  type BoundedFileCode,
} from '../../src/util/bounded-file.ts';

const MODULE = path.resolve(import.meta.dirname, '../../src/util/bounded-file.ts');

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'bounded-file-'));
}

function isRefusal(code: BoundedFileCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof BoundedFileError, `a BoundedFileError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

describe('readBoundedFile', () => {
  it('reads a regular file and a symlink to one (Kubernetes mounts are symlinks)', async () => {
    const dir = scratch();
    writeFileSync(path.join(dir, 'a'), 'hello');
    symlinkSync(path.join(dir, 'a'), path.join(dir, 'link'));
    assert.equal(
      (await readBoundedFile(path.join(dir, 'link'), { maxBytes: 5 })).toString(),
      'hello',
    );
    assert.equal(readBoundedFileSync(path.join(dir, 'a'), { maxBytes: 5 }).toString(), 'hello');
  });

  it('enforces the cap while reading: a file whose size says 0 (procfs, sysfs) is still cut off', async () => {
    // /proc/self/maps has st_size 0 and kilobytes of content: a size check before reading passes it.
    await assert.rejects(
      readBoundedFile('/proc/self/maps', { maxBytes: 16 }),
      isRefusal('EDGEBRIDGE_FILE_TOO_LARGE'),
    );
    assert.throws(
      () => readBoundedFileSync('/proc/self/maps', { maxBytes: 16 }),
      isRefusal('EDGEBRIDGE_FILE_TOO_LARGE'),
    );
    assert.ok((await readBoundedFile('/proc/self/maps', { maxBytes: 1 << 20 })).length > 16);
  });

  it('reads a sysfs attribute, whose st_size (4096) is not its length', async () => {
    const text = (
      await readBoundedFile('/sys/class/net/lo/address', { maxBytes: SYSFS_ATTRIBUTE_BYTES })
    ).toString();
    assert.equal(text, '00:00:00:00:00:00\n');
  });

  it('refuses a 64 GB file after reading just past the cap', async () => {
    const file = path.join(scratch(), 'huge');
    writeFileSync(file, '');
    truncateSync(file, 64 * 1024 ** 3);
    await assert.rejects(
      readBoundedFile(file, { maxBytes: 1024 }),
      isRefusal('EDGEBRIDGE_FILE_TOO_LARGE'),
    );
  });

  it('refuses character devices, a symlink to one, FIFOs and directories without reading them', async () => {
    const dir = scratch();
    symlinkSync('/dev/zero', path.join(dir, 'zero'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    mkdirSync(path.join(dir, 'sub'));
    for (const file of [
      '/dev/zero',
      '/dev/null',
      path.join(dir, 'zero'),
      path.join(dir, 'fifo'),
      path.join(dir, 'sub'),
    ]) {
      // A FIFO without a writer would block the read for ever: a rejection at all shows it did not.
      await assert.rejects(
        readBoundedFile(file, { maxBytes: 1024 }),
        isRefusal('EDGEBRIDGE_FILE_NOT_REGULAR'),
        file,
      );
      assert.throws(
        () => readBoundedFileSync(file, { maxBytes: 1024 }),
        isRefusal('EDGEBRIDGE_FILE_NOT_REGULAR'),
        file,
      );
    }
  });

  it('passes system errors through with their code', async () => {
    await assert.rejects(readBoundedFile(path.join(scratch(), 'missing'), { maxBytes: 1 }), {
      code: 'ENOENT',
    });
  });

  it('abandons a read that the threadpool does not serve within its deadline, and recovers once it does', async () => {
    // A child whose only threadpool thread is held by a blocking open() of a FIFO without a writer.
    const dir = scratch();
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(path.join(dir, 'plain'), 'plain');
    const script = `
      import { open } from 'node:fs/promises';
      import { openSync, closeSync, constants } from 'node:fs';
      import { readBoundedFile } from ${JSON.stringify(MODULE)};
      const [fifo, plain] = process.argv.slice(1);
      const held = open(fifo, 'r');
      const outcome = (p) => p.then((b) => 'read ' + b.toString(), (e) => e.code + ' ' + e.message);
      const lines = [];
      lines.push(await outcome(readBoundedFile(plain, { maxBytes: 100, timeoutMs: 300 })));
      lines.push(await outcome(readBoundedFile(plain, { maxBytes: 100, timeoutMs: 60000 })));
      // A writer releases the held thread; the abandoned read then returns and the path is readable again.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      await (await held).close();
      for (let i = 0; i < 100; i++) {
        const r = await outcome(readBoundedFile(plain, { maxBytes: 100, timeoutMs: 300 }));
        if (r.startsWith('read')) { lines.push(r); break; }
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(JSON.stringify(lines));
    `;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, fifo, path.join(dir, 'plain')],
      {
        env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    const [first, second, third] = JSON.parse(out) as string[];
    assert.match(first ?? '', /^EDGEBRIDGE_FILE_TIMEOUT .*abandoned/);
    // The abandoned read still waits in the pool: the same path fails at once, not after 60 s.
    assert.match(second ?? '', /^EDGEBRIDGE_FILE_TIMEOUT .*has not returned/);
    assert.equal(third, 'read plain');
  });
});
