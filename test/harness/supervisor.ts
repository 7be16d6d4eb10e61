import { createServer, request, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import {
  ControlPlane,
  type ControlPlaneComponents,
  type ControlPlaneInfo,
} from './control-plane.ts';

/**
 * Owns the run's one control plane on behalf of every test process. Test files
 * run in separate processes, so they ask for components over a Unix socket
 * (HTTP) instead of each starting a control plane of their own.
 */
export class Supervisor {
  readonly socket: string;
  readonly controlPlane: ControlPlane;
  readonly #server: Server;

  private constructor(socket: string, controlPlane: ControlPlane, server: Server) {
    this.socket = socket;
    this.controlPlane = controlPlane;
    this.#server = server;
  }

  static async listen(socket: string, controlPlaneDir: string): Promise<Supervisor> {
    const controlPlane = new ControlPlane(controlPlaneDir);
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        void handle(controlPlane, req.method ?? 'GET', req.url ?? '/', body).then(
          (result) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(result ?? {}));
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(err instanceof Error ? err.message : String(err));
          },
        );
      });
    });
    rmSync(socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, resolve);
    });
    return new Supervisor(socket, controlPlane, server);
  }

  /** Stops accepting requests and stops every component it started. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.controlPlane.stop();
  }
}

async function handle(
  cp: ControlPlane,
  method: string,
  url: string,
  body: string,
): Promise<ControlPlaneInfo | undefined> {
  if (method !== 'POST') throw new Error(`unsupported method ${method}`);
  switch (url) {
    case '/control-plane':
      return cp.ensure(JSON.parse(body === '' ? '{}' : body) as ControlPlaneComponents);
    case '/control-plane/apiserver/stop':
      await cp.stopApiServer();
      return undefined;
    case '/control-plane/apiserver/start':
      await cp.startApiServer();
      return undefined;
    default:
      throw new Error(`unknown supervisor request ${url}`);
  }
}

/** Sends one request to the supervisor listening on `socket`. */
export function callSupervisor(
  socket: string,
  url: string,
  payload: unknown = {},
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        path: url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode === 200) resolve(JSON.parse(text) as unknown);
          else reject(new Error(`test supervisor: ${text}`));
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(payload));
  });
}
