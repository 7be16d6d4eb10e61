import { parseArgs } from 'node:util';
import { versionInfo } from '../version.ts';
import { UsageError } from './errors.ts';

export const versionCommand = {
  run(argv: string[]): void {
    const { values } = parseArgs({
      args: argv,
      options: { output: { type: 'string', short: 'o', default: 'text' } },
    });
    const info = versionInfo();
    if (values.output === 'json') {
      process.stdout.write(JSON.stringify(info) + '\n');
    } else if (values.output === 'text') {
      process.stdout.write(`edgebridge ${info.version} (node ${info.node}, ${info.platform})\n`);
    } else {
      throw new UsageError(`unknown output format '${values.output}' (want text or json)`);
    }
  },
};
