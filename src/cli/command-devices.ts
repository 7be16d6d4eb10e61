import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { HANDLER_NAMES, type Device } from '../api/types.ts';
import type { Query, Registry } from '../registry/registry.ts';
import { UsageError } from './errors.ts';
import { quote } from '../util/quote.ts';
import {
  deviceColumns,
  listObject,
  noneFound,
  parseOutputFormat,
  renderObject,
  TablePrinter,
  type OutputFormat,
} from './output.ts';
import {
  openCommandRegistry,
  queryFlagOptions,
  queryFrom,
  registryFlagOptions,
} from './registry-flags.ts';

/** How often --watch lists again; polling works the same on both registry back ends. */
const WATCH_INTERVAL_MS = 2000;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** --handler and --discovery as a field selector (server side on Kubernetes: selectable fields). */
function fieldSelector(
  handler: string | undefined,
  discovery: string | undefined,
): string | undefined {
  const terms: string[] = [];
  if (handler !== undefined) {
    if (!(HANDLER_NAMES as readonly string[]).includes(handler)) {
      throw new UsageError(`--handler ${quote(handler)} is not one of ${HANDLER_NAMES.join(', ')}`);
    }
    terms.push(`spec.handler=${handler}`);
  }
  if (discovery !== undefined) {
    if (discovery.length > 253 || !DNS_SUBDOMAIN.test(discovery)) {
      throw new UsageError(`--discovery ${quote(discovery)} is not a Discovery name`);
    }
    terms.push(`spec.discovery=${discovery}`);
  }
  return terms.length === 0 ? undefined : terms.join(',');
}

function key(d: Device): string {
  return `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`;
}

interface Listing {
  registry: Registry;
  query: Query;
  /** --node: only Devices that this node sees (status.nodes), filtered here. */
  node: string | undefined;
}

async function list({ registry, query, node }: Listing): Promise<Device[]> {
  const devices = await registry.listDevices(query);
  return node === undefined
    ? devices
    : devices.filter((d) => (d.status?.nodes ?? []).some((n) => n.name === node));
}

/** Prints the list once, then every change (new, changed or deleted Device) until the signal aborts. */
async function watch(
  listing: Listing,
  format: OutputFormat,
  printer: TablePrinter<Device>,
  signal: AbortSignal,
): Promise<void> {
  const print = (devices: Device[]): void => {
    if (format === 'table' || format === 'wide') {
      process.stdout.write(printer.render(devices, Date.now()));
    } else {
      for (const d of devices) {
        process.stdout.write((format === 'yaml' ? '---\n' : '') + renderObject(d, format));
      }
    }
  };
  let previous = new Map<string, { device: Device; json: string }>();
  for (let first = true; !signal.aborted; first = false) {
    let devices: Device[];
    try {
      devices = await list(listing);
    } catch (err) {
      if (first) throw err;
      // A failed relist is reported and retried; the watch goes on.
      process.stderr.write(`edgebridge: ${(err as Error).message}\n`);
      devices = [...previous.values()].map((p) => p.device);
    }
    const current = new Map(devices.map((d) => [key(d), { device: d, json: JSON.stringify(d) }]));
    const changed = devices.filter((d) => previous.get(key(d))?.json !== current.get(key(d))?.json);
    // Like kubectl --watch, a deleted object is printed once more.
    const deleted = [...previous].filter(([k]) => !current.has(k)).map(([, p]) => p.device);
    if (first && devices.length === 0 && (format === 'table' || format === 'wide')) {
      process.stderr.write(noneFound(listing.query.namespace));
    }
    print([...changed, ...deleted]);
    previous = current;
    await sleep(WATCH_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
  }
}

/** --watch until SIGINT or SIGTERM, which then end the command normally (exit status 0). */
async function watchUntilSignal(
  listing: Listing,
  format: OutputFormat,
  printer: TablePrinter<Device>,
): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await watch(listing, format, printer, stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const devicesCommand = {
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...registryFlagOptions,
        ...queryFlagOptions,
        handler: { type: 'string' },
        discovery: { type: 'string' },
        node: { type: 'string' },
        watch: { type: 'boolean', short: 'w', default: false },
      },
    });
    const format = parseOutputFormat(values.output);
    const { query, allNamespaces } = queryFrom(values);
    const fields = fieldSelector(values.handler, values.discovery);
    if (fields !== undefined) query.fieldSelector = fields;
    if (values.node === '') throw new UsageError('--node needs a node name');

    const { registry, log } = await openCommandRegistry(values);
    const listing = { registry, query, node: values.node };
    const printer = new TablePrinter(deviceColumns, { wide: format === 'wide', allNamespaces });
    try {
      if (values.watch) {
        await watchUntilSignal(listing, format, printer);
        return;
      }
      const devices = await list(listing);
      if (format === 'json' || format === 'yaml') {
        process.stdout.write(renderObject(listObject('DeviceList', devices), format));
      } else if (devices.length === 0) {
        process.stderr.write(noneFound(query.namespace));
      } else {
        process.stdout.write(printer.render(devices, Date.now()));
      }
    } finally {
      await registry.close();
      log.flush();
    }
  },
};
