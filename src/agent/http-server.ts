import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { AgentMetrics } from '../metrics.ts';
import { closeHttp, listenHttp } from '../util/http-endpoint.ts';

export interface AgentHttpServerOptions {
  port: number;
  host?: string;
  ready: () => boolean;
  /** Undefined when the agent is healthy, else why not: /healthz answers 503 with it. */
  problem: () => string | undefined;
  metrics: AgentMetrics;
  log: Logger;
}

/** /healthz (liveness: 503 with the reason when wedged), /readyz and /metrics (Prometheus text format). */
export class AgentHttpServer {
  readonly #server: Server;
  readonly #opts: AgentHttpServerOptions;

  constructor(opts: AgentHttpServerOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/healthz') {
        const problem = opts.problem();
        res
          .writeHead(problem === undefined ? 200 : 503, { 'content-type': 'text/plain' })
          .end(problem === undefined ? 'ok\n' : `unhealthy: ${problem}\n`);
      } else if (url === '/readyz') {
        const ready = opts.ready();
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(ready ? 'ready\n' : 'not ready: first sync not done\n');
      } else if (url === '/metrics') {
        opts.metrics.registry.metrics().then(
          (text) =>
            res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    const { port, host, log } = this.#opts;
    return listenHttp(this.#server, port, host, log);
  }

  /** Stops accepting connections and closes open ones. Idempotent. */
  close(): Promise<void> {
    return closeHttp(this.#server);
  }
}
