import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { PeerProcess, requireProgram } from './processes.ts';
import { freePort } from './ports.ts';
import { scratchDir } from './workdir.ts';

const MOSQUITTO = '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  /** Role of the broker in the test, e.g. 'node' or 'cloud'; names its directory and log. */
  name: string;
  /** Keep a persistence database in the broker's data directory (default true). */
  persistence?: boolean;
  /** Further mosquitto.conf lines, appended after the harness's own. */
  extraConfig?: string[];
  /** Where the persistence database goes (default `<dir>/data`), e.g. a directory a test inspects. */
  dataDir?: string;
  /** Serve TLS (mqtts://) with this server certificate; `requireCertificate` asks clients for one signed by `ca`. */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
}

export interface Mosquitto {
  readonly name: string;
  /** mqtt://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** PID of the running broker (undefined after stop/kill). */
  readonly pid: number | undefined;
  /** The broker's directory: config, pid file, data/, log. */
  readonly dir: string;
  readonly logFile: string;
  /** SIGTERM (mosquitto saves its database), waits for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash or power loss; waits for exit. */
  kill(): Promise<void>;
  /** Stops if running, then starts again on the same port with the same data directory. */
  restart(): Promise<void>;
  /** Starts again after stop/kill, on the same port with the same data directory; no-op if running. */
  start(): Promise<void>;
}

/** Starts a mosquitto broker on 127.0.0.1 with its own config, port, pid file and data directory. */
export async function startMosquitto(opts: MosquittoOptions): Promise<Mosquitto> {
  requireProgram(MOSQUITTO);
  const dir = scratchDir(`mosquitto-${opts.name}`);
  const dataDir = opts.dataDir ?? path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const tls = opts.tls;
  const port = await freePort();
  const config = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      // As root mosquitto would switch to the 'mosquitto' user, which cannot write our 0700 scratch dir.
      'user root',
      `pid_file ${path.join(dir, 'mosquitto.pid')}`,
      `persistence ${opts.persistence === false ? 'false' : 'true'}`,
      `persistence_location ${dataDir}/`,
      'log_dest stderr',
      'log_type all',
      ...(tls === undefined
        ? []
        : [
            `cafile ${tls.ca}`,
            `certfile ${tls.cert}`,
            `keyfile ${tls.key}`,
            `require_certificate ${tls.requireCertificate === true ? 'true' : 'false'}`,
          ]),
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );

  let proc: PeerProcess | undefined;
  let generation = 0;
  const start = async (): Promise<void> => {
    // One log per start so that a restart does not hide why the previous run ended.
    const name =
      generation === 0 ? `mosquitto-${opts.name}` : `mosquitto-${opts.name}.${generation}`;
    generation += 1;
    const p = new PeerProcess({ name, command: MOSQUITTO, args: ['-c', config], logDir: dir });
    proc = p;
    await p.waitUntil(
      `mosquitto '${opts.name}' to accept connections on 127.0.0.1:${port}`,
      () => canConnect(port),
      10000,
    );
  };
  await start();

  return {
    name: opts.name,
    url: `${tls === undefined ? 'mqtt' : 'mqtts'}://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc !== undefined && !proc.exited ? proc.pid : undefined;
    },
    get logFile() {
      return proc?.logFile ?? '';
    },
    async stop() {
      await proc?.stop();
    },
    async kill() {
      if (proc === undefined) return;
      proc.signal('SIGKILL');
      await proc.stop();
    },
    async restart() {
      await proc?.stop();
      await start();
    },
    async start() {
      if (proc !== undefined && !proc.exited) return;
      await start();
    },
  };
}

/** True once something accepts a TCP connection on 127.0.0.1:port, undefined otherwise (for waitUntil). */
function canConnect(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(undefined));
  });
}
