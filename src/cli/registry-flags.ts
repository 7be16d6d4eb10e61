// Flags shared by the commands that open a registry (agent, devices,
// discoveries), and the kubectl-like query flags of the commands that list.
import type { Logger } from 'pino';
import { createLogger } from '../log.ts';
import { DEFAULT_STATE_DIR, openRegistry, type RegistryOptions } from '../registry/open.ts';
import type { Query, Registry } from '../registry/registry.ts';
import { parseLabelSelector, SelectorError } from '../registry/selectors.ts';
import { UsageError } from './errors.ts';
import { quote } from '../util/quote.ts';

/** A namespace name: an RFC 1123 label. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The flags every command that opens a registry takes (for util.parseArgs). */
export const registryFlagOptions = {
  standalone: { type: 'boolean', default: false },
  'state-dir': { type: 'string', default: DEFAULT_STATE_DIR },
  config: { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

export interface RegistryFlagValues {
  standalone: boolean;
  'state-dir': string;
  config?: string | undefined;
  kubeconfig?: string | undefined;
}

/** RegistryOptions (less the logger) from parsed registry flags. */
export function registryOptionsFrom(values: RegistryFlagValues): Omit<RegistryOptions, 'log'> {
  if (values.standalone && values.kubeconfig !== undefined) {
    throw new UsageError('--kubeconfig and --standalone exclude each other');
  }
  return {
    standalone: values.standalone,
    stateDir: values['state-dir'],
    ...(values.config !== undefined ? { configFile: values.config } : {}),
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
  };
}

/** The flags of the listing commands, as kubectl spells them. */
export const queryFlagOptions = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A', default: false },
  selector: { type: 'string', short: 'l' },
  output: { type: 'string', short: 'o', default: 'table' },
} as const;

export interface QueryFlagValues {
  namespace?: string | undefined;
  'all-namespaces': boolean;
  selector?: string | undefined;
}

/** The Query of -n / -A / -l ("default" namespace unless told, as kubectl); bad selectors are usage errors. */
export function queryFrom(values: QueryFlagValues): { query: Query; allNamespaces: boolean } {
  const allNamespaces = values['all-namespaces'];
  if (allNamespaces && values.namespace !== undefined) {
    throw new UsageError('-n/--namespace and -A/--all-namespaces exclude each other');
  }
  if (values.namespace === '') throw new UsageError('-n/--namespace needs a namespace');
  if (values.namespace !== undefined && !DNS_LABEL.test(values.namespace)) {
    throw new UsageError(`-n/--namespace ${quote(values.namespace)} is not a namespace name`);
  }
  const query: Query = {};
  if (!allNamespaces) query.namespace = values.namespace ?? 'default';
  if (values.selector !== undefined) {
    try {
      parseLabelSelector(values.selector);
    } catch (err) {
      if (err instanceof SelectorError) throw new UsageError(`-l/--selector: ${err.message}`);
      throw err;
    }
    query.labelSelector = values.selector;
  }
  return { query, allNamespaces };
}

/** The registry of a short-lived command; its logger prints only warnings and errors, to stderr. */
export async function openCommandRegistry(
  values: RegistryFlagValues,
): Promise<{ registry: Registry; log: Logger }> {
  const log = createLogger('warn');
  const registry = await openRegistry({
    ...registryOptionsFrom(values),
    requireStateDir: true,
    log,
  });
  return { registry, log };
}
