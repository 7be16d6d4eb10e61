// Listening and closing for the small HTTP endpoints (probes and metrics) of
// the agent and the controller.
import type { Server } from 'node:http';
import type { Logger } from 'pino';

/** Listens on `port` (0: a free one) and `host`; resolves with the bound port. */
export async function listenHttp(
  server: Server,
  port: number,
  host: string | undefined,
  log: Logger,
): Promise<number> {
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
export async function closeHttp(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
