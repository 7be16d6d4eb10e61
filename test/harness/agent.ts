import { readFileSync } from 'node:fs';
import path from 'node:path';
import { httpGet } from './http-get.ts';
import { PeerProcess } from './processes.ts';
import { scratchDir } from './workdir.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

export interface AgentProcess {
  node: string;
  port: number;
  /** mqtt://127.0.0.1:PORT of the agent's embedded node broker; undefined with --no-broker or --broker-url. */
  brokerUrl: string | undefined;
  logFile: string;
  process: PeerProcess;
  /** GET on the agent's HTTP endpoint. */
  get(url: string): Promise<{ status: number; body: string }>;
  /** Sum of the samples of `name` with these labels (0 if none); throws for a name the agent does not export. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The agent's log lines, parsed. */
  logLines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface StartAgentOptions {
  node: string;
  /** Arguments for the registry: ['--kubeconfig', file] or ['--standalone', '--config', f, '--state-dir', d]. */
  registryArgs: string[];
  extraArgs?: string[];
  /** Arguments for node itself, before the CLI's path. */
  nodeArgs?: string[];
  /** Run this CLI entry point instead of the sources' (e.g. the built dist/src/cli/main.js). */
  cli?: string;
  env?: NodeJS.ProcessEnv;
  /** Unless extraArgs choose otherwise (--broker-*, --no-broker), the embedded broker listens on a free loopback port. */
  /** Wait for /readyz (default true). */
  waitReady?: boolean;
}

/** Parses one sample line of the Prometheus text format. */
function sampleMatches(
  line: string,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
  if (m?.[1] !== name) return undefined;
  const got = new Map<string, string>();
  for (const x of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
    got.set(x[1] ?? '', x[2] ?? '');
  for (const [k, v] of Object.entries(labels)) if (got.get(k) !== v) return undefined;
  return Number(m[4]);
}

/** Runs `edgebridge agent` from the sources as a child process on a free port. */
export async function startAgent(opts: StartAgentOptions): Promise<AgentProcess> {
  const dir = scratchDir(`agent-${opts.node}`);
  const extra = opts.extraArgs ?? [];
  const chosen = extra.some((a) => /^--(no-)?broker(-port|-host|-url)?(=|$)/.test(a));
  const brokerArgs = chosen ? [] : ['--broker-port', '0', '--broker-host', '127.0.0.1'];
  const proc = new PeerProcess({
    name: `agent-${opts.node}`,
    command: process.execPath,
    args: [
      ...(opts.nodeArgs ?? []),
      opts.cli ?? CLI,
      'agent',
      '--node',
      opts.node,
      '--http-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--log-level',
      'debug',
      ...opts.registryArgs,
      ...brokerArgs,
      ...extra,
    ],
    logDir: dir,
    ...(opts.env !== undefined ? { env: { ...process.env, ...opts.env } } : {}),
  });
  const logLines = (): Record<string, unknown>[] =>
    readFileSync(proc.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const port = await proc.waitUntil('the agent to report its HTTP port', () => {
    const line = logLines().find((l) => l.msg === 'http endpoint listening');
    return typeof line?.port === 'number' ? line.port : undefined;
  });
  // Logged before the HTTP endpoint, so it is there by now if there is an embedded broker.
  const brokerLine = logLines().find((l) => l.msg === 'node broker listening');
  const agent: AgentProcess = {
    node: opts.node,
    port,
    brokerUrl:
      typeof brokerLine?.port === 'number' ? `mqtt://127.0.0.1:${brokerLine.port}` : undefined,
    logFile: proc.logFile,
    process: proc,
    get: (url) => httpGet(`http://127.0.0.1:${port}${url}`),
    metric: async (name, labels = {}) => {
      const { body } = await httpGet(`http://127.0.0.1:${port}/metrics`);
      // A series without samples reads 0; a name the agent does not export is a mistake.
      const family = name.replace(/_(bucket|sum|count)$/, '');
      if (!body.includes(`# TYPE ${name} `) && !body.includes(`# TYPE ${family} `)) {
        throw new Error(`the agent exports no metric named ${name}`);
      }
      let sum = 0;
      for (const line of body.split('\n')) sum += sampleMatches(line, name, labels) ?? 0;
      return sum;
    },
    logLines,
    stop: () => proc.stop(),
  };
  if (opts.waitReady !== false) {
    await proc.waitUntil(
      'the agent to be ready',
      async () => ((await agent.get('/readyz')).status === 200 ? true : undefined),
      60000,
    );
  }
  return agent;
}
