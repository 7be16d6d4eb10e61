import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { TEST_USERS, type ControlPlaneInfo, type TestUser } from './control-plane.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { freePort } from './ports.ts';
import { MissingPeerError, PeerProcess } from './processes.ts';
import { scratchDir } from './workdir.ts';

/** The Toxiproxy release the far-edge tests use; scripts/build-toxiproxy.sh builds it. */
export const TOXIPROXY_VERSION = process.env.TOXIPROXY_VERSION ?? 'v2.12.0';

/** Raised when Toxiproxy's HTTP API refuses a request. */
export class ToxiproxyApiError extends Error {
  readonly code = 'EDGEBRIDGE_TEST_TOXIPROXY_API';
  constructor(what: string, status: number, body: string) {
    super(`toxiproxy: ${what} failed with HTTP ${status}: ${body.trim()}`);
    this.name = 'ToxiproxyApiError';
  }
}

/** One proxied TCP link; faults apply to the traffic that crosses it. */
export interface ToxiproxyLink {
  readonly name: string;
  /** 127.0.0.1:PORT where clients connect instead of the upstream. */
  readonly listen: string;
  /** Delays every chunk by `ms` in each direction (150 ms each way is a 300 ms round trip). */
  addLatency(ms: number): Promise<void>;
  /** Removes the latency toxics; a no-op without them. */
  removeLatency(): Promise<void>;
  /** Disables the proxy: live connections are reset and new ones refused. */
  cut(): Promise<void>;
  /** Enables the proxy again on the same port. */
  restore(): Promise<void>;
}

/** A toxiproxy-server on loopback, its own process. */
export interface Toxiproxy {
  /** http://127.0.0.1:PORT of its HTTP API. */
  readonly api: string;
  /** Creates a link listening on a free loopback port in front of `upstream` (host:port). */
  link(name: string, upstream: string): Promise<ToxiproxyLink>;
  /** Stops the server by its PID (every link goes with it). Idempotent. */
  stop(): Promise<void>;
}

function binary(): string {
  const cache = process.env.EDGEBRIDGE_CACHE ?? path.join(homedir(), '.cache', 'edgebridge');
  const file = path.join(cache, `toxiproxy-${TOXIPROXY_VERSION}`, 'bin', 'toxiproxy-server');
  if (!existsSync(file)) {
    throw new MissingPeerError(
      file,
      'build it with scripts/build-toxiproxy.sh (scripts/test.sh does this)',
    );
  }
  return file;
}

/** Starts toxiproxy-server on a free loopback port; resolves once its API answers. */
export async function startToxiproxy(): Promise<Toxiproxy> {
  const command = binary();
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const proc = new PeerProcess({
    name: 'toxiproxy',
    command,
    args: ['-host', '127.0.0.1', '-port', String(port)],
    logDir: scratchDir('toxiproxy'),
  });
  await proc.waitUntil(`toxiproxy's API on ${api}`, async () =>
    (await fetch(`${api}/version`)).ok ? true : undefined,
  );

  const call = async (what: string, method: string, url: string, body?: unknown) => {
    const res = await fetch(`${api}${url}`, {
      method,
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
        : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new ToxiproxyApiError(what, res.status, text);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  };

  return {
    api,
    async link(name, upstream) {
      // Port 0: toxiproxy binds, reports the port it got and keeps it across cut/restore.
      const created = (await call(`create proxy ${name}`, 'POST', '/proxies', {
        name,
        listen: '127.0.0.1:0',
        upstream,
        enabled: true,
      })) as { listen: string };
      const proxy = `/proxies/${encodeURIComponent(name)}`;
      const latency = ['upstream', 'downstream'] as const;
      let withLatency = false;
      return {
        name,
        listen: created.listen,
        async addLatency(ms) {
          for (const stream of latency) {
            await call(`add ${stream} latency to ${name}`, 'POST', `${proxy}/toxics`, {
              name: `latency-${stream}`,
              type: 'latency',
              stream,
              toxicity: 1,
              attributes: { latency: ms, jitter: 0 },
            });
          }
          withLatency = true;
        },
        async removeLatency() {
          if (!withLatency) return;
          for (const stream of latency)
            await call(
              `remove ${stream} latency from ${name}`,
              'DELETE',
              `${proxy}/toxics/latency-${stream}`,
            );
          withLatency = false;
        },
        async cut() {
          await call(`cut ${name}`, 'PATCH', proxy, { enabled: false });
        },
        async restore() {
          await call(`restore ${name}`, 'PATCH', proxy, { enabled: true });
        },
      };
    },
    stop: () => proc.stop(),
  };
}

/**
 * A link in front of the control plane's API server (TCP: TLS stays end to
 * end; the serving certificate covers 127.0.0.1 whatever the port) and a
 * kubeconfig for `user` that goes through it.
 */
export async function proxyApiServer(
  toxiproxy: Toxiproxy,
  info: ControlPlaneInfo,
  user: TestUser = 'agent',
): Promise<{ link: ToxiproxyLink; kubeconfig: string }> {
  const upstream = new URL(info.server).host;
  const link = await toxiproxy.link(`apiserver-${user}`, upstream);
  const kubeconfig = path.join(scratchDir('far-edge-kubeconfig'), `${user}.kubeconfig`);
  writeKubeconfig(kubeconfig, {
    server: `https://${link.listen}`,
    caFile: info.caFile,
    user: TEST_USERS[user].name,
    token: info.tokens[user],
  });
  return { link, kubeconfig };
}
