// The small HTTP endpoint of the agent and of the controller: liveness,
// readiness and Prometheus metrics, nothing else.
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface HttpEndpointOptions {
  port: number;
  host?: string;
  /** Undefined when healthy, else why not: /healthz answers 503 with it. */
  problem: () => string | undefined;
  /** Undefined when ready, else why not: /readyz answers 503 with it. */
  notReady: () => string | undefined;
  registry: Registry;
  log: Logger;
}

/** contract: /healthz, /readyz (200, or 503 with the reason) and /metrics; listen() then close(). */
export class HttpEndpoint {
  readonly #server: Server;
  readonly #opts: HttpEndpointOptions;

  constructor(opts: HttpEndpointOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      const answer = (why: string | undefined, ok: string, bad: string): void => {
        res
          .writeHead(why === undefined ? 200 : 503, { 'content-type': 'text/plain' })
          .end(why === undefined ? `${ok}\n` : `${bad}: ${why}\n`);
      };
      if (url === '/healthz') answer(opts.problem(), 'ok', 'unhealthy');
      else if (url === '/readyz') answer(opts.notReady(), 'ready', 'not ready');
      else if (url === '/metrics') {
        opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
  }

  /** Listens on the port (0: a free one); resolves with the bound port. */
  async listen(): Promise<number> {
    const { port, host, log } = this.#opts;
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = address !== null && typeof address === 'object' ? address.port : port;
    log.info({ port: bound }, 'http endpoint listening');
    return bound;
  }

  /** Stops accepting connections and drops open ones: probes and scrapes are short. Idempotent. */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
