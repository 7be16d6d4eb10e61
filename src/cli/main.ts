#!/usr/bin/env node
import { InputError, UsageError } from './errors.ts';
import { clip, quote } from '../util/quote.ts';

/** The longest error message the CLI prints. */
const MAX_MESSAGE_CHARS = 1024;

interface Command {
  run(argv: string[]): void | Promise<void>;
}

interface CommandEntry {
  name: string;
  summary: string;
  /** Imported on use: the Kubernetes client alone takes a second to load. */
  load: () => Promise<Command>;
}

const commands: CommandEntry[] = [
  {
    name: 'agent',
    summary: 'run the node agent: discovery, Device registration, health and metrics endpoint',
    load: async () => (await import('./command-agent.ts')).agentCommand,
  },
  {
    name: 'controller',
    summary:
      "run the controller: folds every node's DeviceSlices into Devices and Discovery status",
    load: async () => (await import('./command-controller.ts')).controllerCommand,
  },
  {
    name: 'devices',
    summary: 'list Devices (-n NS | -A, -l SELECTOR, --handler, --discovery, --node, -o, --watch)',
    load: async () => (await import('./command-devices.ts')).devicesCommand,
  },
  {
    name: 'discoveries',
    summary: 'list Discoveries (-n NS | -A, -l SELECTOR, -o table|wide|json|yaml)',
    load: async () => (await import('./command-discoveries.ts')).discoveriesCommand,
  },
  {
    name: 'scan',
    summary:
      "run one handler's discovery on this host and print what it finds (--details, --property, --timeout, -o)",
    load: async () => (await import('./command-scan.ts')).scanCommand,
  },
  {
    name: 'version',
    summary: 'print the version of edgebridge and of the Node.js it runs on',
    load: async () => (await import('./command-version.ts')).versionCommand,
  },
];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return ['usage: edgebridge <command> [options]', '', 'commands:', ...lines, ''].join('\n');
}

/**
 * An error message as printed: any quoted value in it cut to a few dozen
 * characters (Node's own argument errors repeat a flag whole, twice), and the
 * whole at most a few lines, whatever a user typed.
 */
function bounded(message: string): string {
  const clipped = message.replace(
    /(['"])([^'"\n]{65,})\1/g,
    (_, q: string, v: string) => q + clip(v) + q,
  );
  return clip(clipped, MAX_MESSAGE_CHARS);
}

function isUsageError(err: unknown): err is Error {
  return (
    err instanceof UsageError ||
    (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
  );
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = commands.find((c) => c.name === name);
  try {
    if (entry === undefined) throw new UsageError(`unknown command ${quote(name)}`);
    await (await entry.load()).run(rest);
    return 0;
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`edgebridge: ${err.message}\n`);
      return 2;
    }
    if (isUsageError(err)) {
      process.stderr.write(`edgebridge: ${bounded(err.message)}\n\n${usage()}`);
      return 2;
    }
    // One line for the user; the stack only when asked for.
    const code =
      err !== null && typeof err === 'object' && 'code' in err ? ` [${String(err.code)}]` : '';
    process.stderr.write(
      `edgebridge: ${bounded(err instanceof Error ? err.message : String(err))}${code}\n`,
    );
    if (process.env.EDGEBRIDGE_DEBUG !== undefined && err instanceof Error)
      process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
