// How the query commands print objects: kubectl-like tables (the CRDs'
// printer columns, all nodes rather than the first), wide tables, and
// Kubernetes-style Lists as JSON or YAML.
import { stringify } from 'yaml';
import type { Device, Discovery, ObjectMeta } from '../api/types.ts';
import { UsageError } from './errors.ts';
import { quote } from '../util/quote.ts';
import { handlerNameOf } from '../registry/spec-valid.ts';

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The -o value as a format; a UsageError (exit 2) for anything else. */
export function parseOutputFormat(value: string): OutputFormat {
  const format = OUTPUT_FORMATS.find((f) => f === value);
  if (format === undefined) {
    throw new UsageError(
      `unknown output format ${quote(value)} (want ${OUTPUT_FORMATS.join(', ')})`,
    );
  }
  return format;
}

/** One column of a table; wide columns appear only with -o wide, after the others as in kubectl. */
export interface Column<T> {
  header: string;
  wide?: boolean;
  cell(item: T, now: number): string;
}

export interface TableOptions {
  wide: boolean;
  /** Adds the NAMESPACE column first (kubectl -A). */
  allNamespaces: boolean;
  /** Milliseconds since the epoch for AGE; injectable for tests. */
  now: number;
}

const NONE = '<none>';
const COLUMN_GAP = 3;

/**
 * kubectl's human duration (k8s.io/apimachinery duration.HumanDuration): exact
 * seconds for two minutes, then coarser units.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8)
    return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** The AGE cell of an object. */
export function age(meta: ObjectMeta, now: number): string {
  const created = Date.parse(meta.creationTimestamp ?? '');
  return Number.isNaN(created) ? '<unknown>' : humanDuration(now - created);
}

const namespaceColumn: Column<{ metadata: ObjectMeta }> = {
  header: 'NAMESPACE',
  cell: (o) => o.metadata.namespace ?? 'default',
};

export const deviceColumns: Column<Device>[] = [
  { header: 'NAME', cell: (d) => d.metadata.name },
  { header: 'HANDLER', cell: (d) => d.spec.handler },
  { header: 'SHARED', cell: (d) => String(d.spec.shared) },
  {
    header: 'NODES',
    cell: (d) => (d.status?.nodes ?? []).map((n) => n.name).join(',') || NONE,
  },
  { header: 'AGE', cell: (d, now) => age(d.metadata, now) },
  { header: 'DISCOVERY', wide: true, cell: (d) => d.spec.discovery },
  { header: 'ID', wide: true, cell: (d) => d.spec.id },
  { header: 'CAPACITY', wide: true, cell: (d) => String(d.spec.capacity) },
  {
    header: 'PROPERTIES',
    wide: true,
    cell: (d) => String(Object.keys(d.spec.properties ?? {}).length),
  },
];

export const discoveryColumns: Column<Discovery>[] = [
  { header: 'NAME', cell: (d) => d.metadata.name },
  { header: 'HANDLER', cell: (d) => handlerNameOf(d) || NONE },
  {
    header: 'DEVICES',
    cell: (d) => (d.status?.devices === undefined ? NONE : String(d.status.devices)),
  },
  { header: 'AGE', cell: (d, now) => age(d.metadata, now) },
  {
    header: 'DETAILSVALID',
    wide: true,
    cell: (d) => d.status?.conditions?.find((c) => c.type === 'DetailsValid')?.status ?? NONE,
  },
];

/** The columns to print, in order. */
export function columnsFor<T extends { metadata: ObjectMeta }>(
  columns: readonly Column<T>[],
  options: Pick<TableOptions, 'wide' | 'allNamespaces'>,
): Column<T>[] {
  const shown = columns.filter((c) => options.wide || c.wide !== true);
  return options.allNamespaces ? [namespaceColumn, ...shown] : shown;
}

/** Table cells stay on one line whatever an object holds. */
function clean(cell: string): string {
  // eslint-disable-next-line no-control-regex
  return cell.replace(/[\u0000-\u001f\u007f]/g, ' ');
}

/**
 * Prints rows aligned under a header, remembering the column widths so that
 * rows printed later (--watch) line up with the first table.
 */
export class TablePrinter<T extends { metadata: ObjectMeta }> {
  readonly #columns: Column<T>[];
  readonly #widths: number[];
  #headerDone = false;

  constructor(
    columns: readonly Column<T>[],
    options: Pick<TableOptions, 'wide' | 'allNamespaces'>,
  ) {
    this.#columns = columnsFor(columns, options);
    this.#widths = this.#columns.map((c) => c.header.length);
  }

  /** The rows of `items`, with the header before the first rows ever printed. */
  render(items: readonly T[], now: number): string {
    if (items.length === 0) return '';
    const rows = items.map((item) => this.#columns.map((c) => clean(c.cell(item, now))));
    for (const row of rows) {
      row.forEach((cell, i) => {
        this.#widths[i] = Math.max(this.#widths[i] ?? 0, cell.length);
      });
    }
    if (!this.#headerDone) {
      rows.unshift(this.#columns.map((c) => c.header));
      this.#headerDone = true;
    }
    return rows.map((row) => this.#line(row)).join('');
  }

  #line(row: string[]): string {
    const last = row.length - 1;
    const padded = row.map((cell, i) =>
      i === last ? cell : cell.padEnd((this.#widths[i] ?? 0) + COLUMN_GAP),
    );
    return padded.join('') + '\n';
  }
}

/** A table of items as a string (header included), or '' for none. */
export function renderTable<T extends { metadata: ObjectMeta }>(
  items: readonly T[],
  columns: readonly Column<T>[],
  options: TableOptions,
): string {
  return new TablePrinter(columns, options).render(items, options.now);
}

/** kubectl's note (for stderr) when a table would be empty. */
export function noneFound(namespace: string | undefined): string {
  return namespace === undefined
    ? 'No resources found\n'
    : `No resources found in ${namespace} namespace.\n`;
}

/** A Kubernetes-style List, e.g. {"apiVersion":"v1","kind":"DeviceList","items":[...]}. */
export function listObject(kind: string, items: readonly unknown[]): Record<string, unknown> {
  return { apiVersion: 'v1', kind, items };
}

/** An object as -o json (4-space indent, like kubectl) or -o yaml prints it. */
export function renderObject(object: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(object, null, 4) + '\n' : stringify(object);
}
