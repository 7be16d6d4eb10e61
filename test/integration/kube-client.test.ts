import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { API_VERSION, GROUP, VERSION, type Discovery } from '../../src/api/types.ts';
import { KubeApiError } from '../../src/registry/kubernetes/client/errors.ts';
import { runInformer } from '../../src/registry/kubernetes/client/informer.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { listWatch, type ListWatch } from '../../src/registry/kubernetes/client/list-watch.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';

// Discoveries here carry this file's own label, and the informer selects on it,
// so that objects of other test files sharing the API server do not show up.
const TEST_LABEL = 'edgebridge.io/kube-client-test';
const run = `${process.pid}-${randomBytes(2).toString('hex')}`;

const discoveries = (namespace?: string): string =>
  resourcePath({
    group: GROUP,
    version: VERSION,
    plural: 'discoveries',
    ...(namespace !== undefined ? { namespace } : {}),
  });

function discovery(name: string): object {
  return {
    apiVersion: API_VERSION,
    kind: 'Discovery',
    metadata: { name, labels: { [TEST_LABEL]: run } },
    spec: {
      handler: { name: 'simulated', details: { file: '/nonexistent' } },
      // No node has this label: agents of other test files must not write these objects' status.
      nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
    },
  };
}

/** A logger whose lines are kept for assertions. */
function capturedLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('the slim Kubernetes client against a real API server', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    const ns = await testNamespace(info, 'kube-client');
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    return { info, ns, client };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    s.client.close();
    await s.ns.remove();
  });

  it('creates, gets and deletes with preconditions; errors carry the status and the Status reason', async () => {
    const { ns, client } = await setup();
    const created = await client.request<Discovery>('POST', discoveries(ns.name), {
      body: discovery('crud'),
    });
    assert.equal(created.metadata.name, 'crud');
    const path = `${discoveries(ns.name)}/crud`;
    await assert.rejects(
      client.request('POST', discoveries(ns.name), { body: discovery('crud') }),
      (err: unknown) =>
        err instanceof KubeApiError && err.status === 409 && err.reason === 'AlreadyExists',
    );
    await assert.rejects(
      client.request('DELETE', path, { body: { preconditions: { resourceVersion: '1' } } }),
      (err: unknown) =>
        err instanceof KubeApiError && err.status === 409 && err.reason === 'Conflict',
    );
    await client.request('DELETE', path, {
      body: { preconditions: { resourceVersion: created.metadata.resourceVersion } },
    });
    await eventually('the Discovery to be gone', async () => {
      try {
        await client.request('GET', path);
        return undefined;
      } catch (err) {
        return err instanceof KubeApiError && err.status === 404 && err.reason === 'NotFound'
          ? true
          : undefined;
      }
    });
  });

  it('lists again when the watch resource version has expired (410 Gone), and keeps watching after', async () => {
    const { ns, client } = await setup();
    await client.request('POST', discoveries(ns.name), { body: discovery('before') });
    const real = listWatch<Discovery>(client, discoveries(), {
      labelSelector: `${TEST_LABEL}=${run}`,
    });
    let lists = 0;
    // The first list claims resource version 1, long compacted out of the
    // API server's watch cache: the real server answers the watch with 410.
    const source: ListWatch<Discovery> = {
      list: async (signal, token) => {
        const list = await real.list(signal, token);
        return lists++ === 0 ? { ...list, metadata: { resourceVersion: '1' } } : list;
      },
      watch: (rv, signal) => real.watch(rv, signal),
    };
    const { log, lines } = capturedLog();
    const syncs: string[][] = [];
    const stop = new AbortController();
    const running = runInformer<Discovery>(
      {
        source,
        onSync: (items) => syncs.push(items.map((d) => d.metadata.name).sort()),
        log,
        what: 'discoveries',
      },
      stop.signal,
    );
    try {
      await eventually('a second list', () => Promise.resolve(lists >= 2 ? true : undefined));
      assert.ok(
        lines.some((l) => l.msg === 'watch of discoveries expired; listing again'),
        'the informer did not see the expiry',
      );
      assert.deepEqual(syncs.slice(0, 2), [['before'], ['before']], 'each list gives the full set');
      await client.request('POST', discoveries(ns.name), { body: discovery('after') });
      await eventually('the new Discovery through the watch', () =>
        Promise.resolve(syncs.at(-1)?.join(',') === 'after,before' ? true : undefined),
      );
      assert.equal(lists, 2, 'the change came through the watch, not another list');
    } finally {
      stop.abort();
      await running;
    }
  });

  it('lists in pages and transforms each object as it is decoded, listed or watched', async () => {
    const { ns, client } = await setup();
    const label = `${TEST_LABEL}-pages`;
    const labelled = (name: string): object => {
      const d = discovery(name) as { metadata: { labels: Record<string, string> } };
      return { ...d, metadata: { ...d.metadata, labels: { [label]: run } } };
    };
    for (const name of ['p1', 'p2', 'p3', 'p4', 'p5'])
      await client.request('POST', discoveries(ns.name), { body: labelled(name) });
    let pages = 0;
    const source = listWatch<Discovery>(
      client,
      discoveries(ns.name),
      { labelSelector: `${label}=${run}`, pageSize: 2 },
      (verb, fn) => {
        if (verb === 'list') pages++;
        return fn();
      },
    );
    const seen: Discovery[][] = [];
    const events: Discovery[] = [];
    const stop = new AbortController();
    const running = runInformer<Discovery>(
      {
        source,
        onSync: (items) => seen.push(items),
        onEvent: (_type, o) => events.push(o),
        log: capturedLog().log,
        what: 'discoveries',
        // Keeps the name only: what a cache keeps is up to the caller.
        transform: (o) => ({ ...o, metadata: { name: o.metadata.name } }),
      },
      stop.signal,
    );
    try {
      await eventually('the first list', () => Promise.resolve(seen.length > 0 ? true : undefined));
      assert.equal(pages, 3, 'five objects in pages of two');
      assert.deepEqual(
        seen[0]?.map((d) => d.metadata).sort((a, b) => a.name.localeCompare(b.name)),
        ['p1', 'p2', 'p3', 'p4', 'p5'].map((name) => ({ name })),
      );
      await client.request('POST', discoveries(ns.name), { body: labelled('p6') });
      await eventually('the new Discovery through the watch', () =>
        Promise.resolve(events.length > 0 ? true : undefined),
      );
      assert.deepEqual(events[0]?.metadata, { name: 'p6' });
    } finally {
      stop.abort();
      await running;
    }
  });
});
