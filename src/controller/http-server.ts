import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { ControllerMetrics } from './metrics.ts';
import { closeHttp, listenHttp } from '../util/http-endpoint.ts';

export interface ControllerHttpServerOptions {
  port: number;
  host?: string;
  /** Why the controller is not ready (caches not synced), or undefined when it is. */
  notReady: () => string | undefined;
  /** Undefined when healthy, else why not: /healthz answers 503 with it. */
  problem: () => string | undefined;
  metrics: ControllerMetrics;
  log: Logger;
}

/** /healthz (liveness), /readyz (caches synced) and /metrics (Prometheus text format). */
export class ControllerHttpServer {
  readonly #server: Server;
  readonly #opts: ControllerHttpServerOptions;

  constructor(opts: ControllerHttpServerOptions) {
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
        opts.metrics.registry.metrics().then(
          (text) =>
            res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
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
