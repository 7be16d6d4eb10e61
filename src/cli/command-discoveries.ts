import { parseArgs } from 'node:util';
import {
  discoveryColumns,
  listObject,
  noneFound,
  parseOutputFormat,
  renderObject,
  renderTable,
} from './output.ts';
import {
  openCommandRegistry,
  queryFlagOptions,
  queryFrom,
  registryFlagOptions,
} from './registry-flags.ts';

export const discoveriesCommand = {
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: { ...registryFlagOptions, ...queryFlagOptions },
    });
    const format = parseOutputFormat(values.output);
    const { query, allNamespaces } = queryFrom(values);
    const { registry, log } = await openCommandRegistry(values);
    try {
      const discoveries = await registry.listDiscoveries(query);
      if (format === 'json' || format === 'yaml') {
        process.stdout.write(renderObject(listObject('DiscoveryList', discoveries), format));
      } else if (discoveries.length === 0) {
        process.stderr.write(noneFound(query.namespace));
      } else {
        const options = { wide: format === 'wide', allNamespaces, now: Date.now() };
        process.stdout.write(renderTable(discoveries, discoveryColumns, options));
      }
    } finally {
      await registry.close();
      log.flush();
    }
  },
};
