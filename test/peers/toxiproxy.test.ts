import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { proxyApiServer, startToxiproxy } from '../harness/toxiproxy.ts';

const EACH_WAY_MS = 150;

/** GETs over one kept-alive TLS connection, so that each request after the first costs one round trip. */
function client(server: string, ca: Buffer, token: string) {
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 1 });
  const get = (url: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request(
        `${server}${url}`,
        { agent, headers: { authorization: `Bearer ${token}` }, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  return {
    get,
    /** The fastest of `n` requests on the warm connection, in ms. */
    async fastest(n = 3): Promise<number> {
      assert.equal(await get('/readyz'), 200);
      let best = Infinity;
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        assert.equal(await get('/readyz'), 200);
        best = Math.min(best, performance.now() - t);
      }
      return best;
    },
    close: () => agent.destroy(),
  };
}

describe('toxiproxy in front of the API server', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    const toxiproxy = await startToxiproxy();
    const { link } = await proxyApiServer(toxiproxy, info, 'admin');
    return { info, toxiproxy, link, ca: readFileSync(info.caFile) };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await (await settled(started))?.toxiproxy.stop();
  });

  it('adds the latency of its toxics to each round trip, and removes it with them', async () => {
    const { info, link, ca } = await setup();
    const through = client(`https://${link.listen}`, ca, info.tokens.admin);
    try {
      const plain = await through.fastest();
      await link.addLatency(EACH_WAY_MS);
      const slowed = await through.fastest();
      await link.removeLatency();
      const again = await through.fastest();
      // Correctness of the toxic (300 ms per round trip), not a speed target.
      assert.ok(slowed - plain > 250, `latency added: ${(slowed - plain).toFixed(0)} ms`);
      assert.ok(
        again - plain < 250,
        `latency left after removal: ${(again - plain).toFixed(0)} ms`,
      );
    } finally {
      through.close();
    }
  });

  it('fails requests while the link is cut, live connections included, and carries them once restored', async () => {
    const { info, link, ca } = await setup();
    const live = client(`https://${link.listen}`, ca, info.tokens.admin);
    const fresh = client(`https://${link.listen}`, ca, info.tokens.admin);
    try {
      assert.equal(await live.get('/readyz'), 200, 'the kept-alive connection is open');
      await link.cut();
      await assert.rejects(live.get('/readyz'), 'the live connection was reset');
      await assert.rejects(fresh.get('/readyz'), 'a new connection is refused');
      await link.restore();
      assert.equal(await live.get('/readyz'), 200);
      assert.equal(await fresh.get('/readyz'), 200);
    } finally {
      live.close();
      fresh.close();
    }
  });
});
