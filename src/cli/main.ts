#!/usr/bin/env node
import { versionCommand } from './command-version.ts';
import { UsageError } from './errors.ts';

interface Command {
  name: string;
  summary: string;
  run(argv: string[]): void | Promise<void>;
}

const commands: Command[] = [versionCommand];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return ['usage: edgebridge <command> [options]', '', 'commands:', ...lines, ''].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  try {
    if (command === undefined) throw new UsageError(`unknown command '${name}'`);
    await command.run(rest);
    return 0;
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`edgebridge: ${err.message}\n\n${usage()}`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
