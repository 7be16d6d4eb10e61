// edgebridge scan HANDLER: one handler's discovery on this host, without any
// registry or broker; prints the first complete device list and exits. How a
// user tries a Discovery's details before applying it, and how tests and
// benchmarks drive a handler alone.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { checkedLists } from '../../discovery-handlers/checked-lists.ts';
import {
  InvalidDetailsError,
  type DevicePublisher,
  type DiscoveredDevice,
} from '../../discovery-handlers/handler.ts';
import { findHandler, handlerNames } from '../../discovery-handlers/registry.ts';
import { createLogger } from '../log.ts';
import { parseJsonOrYaml } from '../util/yaml.ts';
import { InputError, UsageError } from './errors.ts';
import { renderObject, TablePrinter, type Column } from './output.ts';

const DEFAULT_TIMEOUT_SECONDS = 10;
const MAX_TIMEOUT_SECONDS = 3600;
const MAX_DETAILS_BYTES = 1024 * 1024;
/** How long a stopped handler may take to close its sockets before the command exits anyway. */
const STOP_GRACE_MS = 2000;
const REDACTED = '<redacted>';
const PROPERTY = /^([A-Za-z_][A-Za-z0-9_.-]{0,252})=(.*)$/s;

/** Nothing is published during a scan: there is no broker. */
const discardingPublisher: DevicePublisher = {
  data: () => undefined,
  state: () => undefined,
  event: () => undefined,
};

interface Row {
  metadata: { name: string };
  device: DiscoveredDevice;
}

const pairs = (map: Record<string, string> | undefined): string =>
  Object.entries(map ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '<none>';

const columns: Column<Row>[] = [
  { header: 'ID', cell: (r) => r.device.id },
  { header: 'PROPERTIES', cell: (r) => pairs(r.device.properties) },
  { header: 'LABELS', cell: (r) => pairs(r.device.labels) },
  {
    header: 'DEVICENODES',
    cell: (r) => (r.device.deviceNodes ?? []).map((n) => n.hostPath).join(',') || '<none>',
  },
];

async function readDetails(json: string | undefined, file: string | undefined): Promise<unknown> {
  if (json !== undefined && file !== undefined)
    throw new UsageError('give --details or --details-file, not both');
  let text = json;
  if (file !== undefined) {
    const buf = await readFile(file).catch((err: unknown) => {
      throw new InputError(`--details-file ${file}: ${(err as Error).message}`);
    });
    if (buf.length > MAX_DETAILS_BYTES)
      throw new InputError(`--details-file ${file}: larger than ${MAX_DETAILS_BYTES} bytes`);
    text = buf.toString('utf8');
  }
  if (text === undefined) return {};
  try {
    return parseJsonOrYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new InputError(`details are not JSON or YAML: ${(err as Error).message}`);
  }
}

function parseProperties(values: string[]): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const v of values) {
    const m = PROPERTY.exec(v);
    if (m === null) throw new UsageError(`--property wants NAME=VALUE (got '${v.split('=')[0]}')`);
    secrets[m[1] as string] = m[2] as string;
  }
  return secrets;
}

/** The device with every property value that holds a --property value replaced: those are secrets. */
function redact(device: DiscoveredDevice, secrets: string[]): DiscoveredDevice {
  if (secrets.length === 0) return device;
  const properties = Object.fromEntries(
    Object.entries(device.properties).map(([k, v]) => [
      k,
      secrets.some((s) => v.includes(s)) ? REDACTED : v,
    ]),
  );
  return { ...device, properties };
}

export const scanCommand = {
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        details: { type: 'string' },
        'details-file': { type: 'string' },
        property: { type: 'string', multiple: true, default: [] },
        timeout: { type: 'string', default: String(DEFAULT_TIMEOUT_SECONDS) },
        output: { type: 'string', short: 'o', default: 'table' },
        'log-level': { type: 'string', default: 'warn' },
      },
    });
    const [name, ...extra] = positionals;
    if (name === undefined)
      throw new UsageError(`scan wants a handler: ${handlerNames().join(', ')}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const handler = findHandler(name);
    if (handler === undefined)
      throw new UsageError(`no handler named '${name}' (known: ${handlerNames().join(', ')})`);
    const format = values.output;
    if (format !== 'table' && format !== 'json' && format !== 'yaml')
      throw new UsageError(`unknown output format '${format}' (want table, json, yaml)`);
    const timeout = Number(values.timeout);
    if (!(timeout > 0 && timeout <= MAX_TIMEOUT_SECONDS))
      throw new UsageError(`--timeout wants seconds from 0 to ${MAX_TIMEOUT_SECONDS}`);
    const level = values['log-level'];
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level))
      throw new UsageError(`unknown --log-level '${level}'`);
    const secrets = parseProperties(values.property);
    const raw = await readDetails(values.details, values['details-file']);

    let details: unknown;
    try {
      details = handler.validate(raw);
    } catch (err) {
      if (err instanceof InvalidDetailsError) throw new InputError(err.message);
      throw err;
    }

    const log = createLogger(level as 'warn', 'edgebridge-scan').child({ handler: name });
    const abort = new AbortController();
    const lists = checkedLists(
      handler.discover(details, {
        signal: abort.signal,
        log,
        node: hostname(),
        secrets,
        intervalSeconds: 30,
        publish: discardingPublisher,
      }),
      log,
    );
    const iterator = lists[Symbol.asyncIterator]();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeout * 1000);
    });
    let first: IteratorResult<DiscoveredDevice[]> | 'timeout';
    try {
      first = await Promise.race([iterator.next(), timedOut]);
    } finally {
      // A handler that fails (an interface that is not there) ends the command now.
      clearTimeout(timer);
    }
    let devices: DiscoveredDevice[] = [];
    if (first === 'timeout') {
      log.warn({ timeoutSeconds: timeout }, 'no complete device list within the timeout');
    } else if (first.done !== true) {
      devices = first.value;
    }
    abort.abort(new Error('scan done'));
    // A handler stuck in work it cannot cancel is abandoned, not waited for.
    const stopped = await Promise.race([
      iterator.return(undefined).then(
        () => true,
        () => true,
      ),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), STOP_GRACE_MS).unref()),
    ]);

    const shown = devices
      .map((d) =>
        redact(
          d,
          Object.values(secrets).filter((s) => s.length > 0),
        ),
      )
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (format === 'table') {
      const rows = shown.map((device) => ({ metadata: { name: device.id }, device }));
      const table = new TablePrinter(columns, { wide: false, allNamespaces: false });
      process.stdout.write(table.render(rows, Date.now()));
      if (rows.length === 0) process.stderr.write('No devices found\n');
    } else {
      const items = shown.map((d) => ({
        id: d.id,
        properties: d.properties,
        labels: d.labels ?? {},
        deviceNodes: d.deviceNodes ?? [],
        mounts: d.mounts ?? [],
      }));
      process.stdout.write(renderObject({ items }, format));
    }
    if (!stopped) {
      log.warn('the handler did not stop in time; exiting anyway');
      log.flush();
      process.exit(0);
    }
  },
};
