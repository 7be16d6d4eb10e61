// The config file of the embedded registry: the multi-document YAML a user
// would kubectl-apply (Discoveries, and the Secrets and ConfigMaps their
// properties refer to). A bad document is skipped with one clear error; a file
// that cannot be used at all leaves the last good set in place.
import type { Logger } from 'pino';
import type { Discovery } from '../../api/types.ts';
import { configMap, discovery, secret, ShapeError, type KeyValues } from './config-shape.ts';
import { BoundedFileError, readBoundedFile } from '../../util/bounded-file.ts';
import { ConfigDocumentError, ConfigFileError } from './errors.ts';
import { documentToJs, ParseError, parseYamlDocuments } from '../../util/yaml.ts';
import { clip, quote, QUOTE_MAX_CHARS } from '../../util/quote.ts';

/** Bigger than any hand-written config; a guard against reading something that is not one. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** What one good read of the config file holds. */
export interface ConfigObjects {
  /** In file order, namespace defaulted, without uid/generation/status. */
  discoveries: Discovery[];
  /** "namespace/name" to the Secret's keys (data decoded, stringData applied). */
  secrets: Map<string, Map<string, string>>;
  configMaps: Map<string, Map<string, string>>;
  /** "namespace/name" of each Discovery whose spec is not valid, to why. */
  invalidSpecs: Map<string, string>;
}

export interface ParsedConfig {
  objects: ConfigObjects;
  /** Documents that were skipped. */
  errors: ConfigDocumentError[];
  /** Discoveries kept though their spec is not valid (see ConfigObjects.invalidSpecs). */
  invalid: ConfigDocumentError[];
}

export function emptyConfig(): ConfigObjects {
  return { discoveries: [], secrets: new Map(), configMaps: new Map(), invalidSpecs: new Map() };
}

function describeDoc(doc: Record<string, unknown>): string {
  const kind = typeof doc.kind === 'string' ? clip(doc.kind) : '';
  const meta = doc.metadata;
  if (typeof meta !== 'object' || meta === null) return kind;
  const { name, namespace } = meta as Record<string, unknown>;
  if (typeof name !== 'string') return kind;
  const ns = typeof namespace === 'string' ? namespace : 'default';
  return clip(`${kind} ${ns}/${name}`.trim(), 2 * QUOTE_MAX_CHARS);
}

/**
 * Parses the config text. Throws a ConfigFileError if the text is not YAML (a
 * syntax error anywhere means document boundaries cannot be trusted either) or
 * holds no object at all though it is not empty.
 */
export function parseConfig(text: string, file: string): ParsedConfig {
  let docs: ReturnType<typeof parseYamlDocuments>;
  try {
    docs = parseYamlDocuments(text);
  } catch (err) {
    // Where and what kind of mistake, never the line itself: it may hold a Secret's data.
    if (err instanceof ParseError) throw new ConfigFileError(file, err.message);
    throw err;
  }
  const objects = emptyConfig();
  const errors: ConfigDocumentError[] = [];
  const invalid: ConfigDocumentError[] = [];
  const seen = new Set<string>();
  let nonEmpty = 0;
  let mappings = 0;
  docs.forEach((doc, i) => {
    const index = i + 1;
    let value: unknown;
    try {
      value = documentToJs(doc, { maxAliasCount: 100 });
    } catch (err) {
      errors.push(new ConfigDocumentError(file, index, '', (err as Error).message));
      nonEmpty++;
      return;
    }
    if (value === null || value === undefined) return;
    nonEmpty++;
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(new ConfigDocumentError(file, index, '', 'not an object'));
      return;
    }
    mappings++;
    const fields = value as Record<string, unknown>;
    const what = describeDoc(fields);
    try {
      const kind = fields.kind;
      if (kind === 'Discovery') {
        const { discovery: d, specProblem } = discovery(fields);
        const key = `Discovery/${d.metadata.namespace ?? ''}/${d.metadata.name}`;
        if (seen.has(key)) throw new ShapeError('', 'duplicate of an earlier document');
        seen.add(key);
        objects.discoveries.push(d);
        if (specProblem !== undefined) {
          objects.invalidSpecs.set(
            `${d.metadata.namespace ?? 'default'}/${d.metadata.name}`,
            specProblem,
          );
          invalid.push(new ConfigDocumentError(file, index, what, specProblem));
        }
      } else if (kind === 'Secret' || kind === 'ConfigMap') {
        const kv: KeyValues = kind === 'Secret' ? secret(fields) : configMap(fields);
        const key = `${kv.meta.namespace}/${kv.meta.name}`;
        if (seen.has(`${kind}/${key}`))
          throw new ShapeError('', 'duplicate of an earlier document');
        seen.add(`${kind}/${key}`);
        (kind === 'Secret' ? objects.secrets : objects.configMaps).set(key, kv.data);
      } else if (typeof kind === 'string') {
        throw new ShapeError(
          'kind',
          `${quote(kind)} is not supported (want Discovery, Secret or ConfigMap)`,
        );
      } else {
        throw new ShapeError('kind', 'missing');
      }
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      errors.push(new ConfigDocumentError(file, index, what, err.message));
    }
  });
  if (nonEmpty > 0 && mappings === 0) {
    throw new ConfigFileError(file, 'holds no Kubernetes objects (YAML mappings)');
  }
  return { objects, errors, invalid };
}

/** The result of reading the config file: the objects and a number that changes with them. */
export interface ConfigSnapshot {
  objects: ConfigObjects;
  /** Increases whenever a new good set was read. */
  version: number;
}

/**
 * Reads the config file on demand, re-parsing only when its text changed, and
 * keeps the last good set when the file becomes unusable. Errors are logged
 * once per distinct content, not on every poll.
 */
export class ConfigSource {
  readonly #file: string | undefined;
  readonly #log: Logger;
  #lastText: string | undefined;
  /** Why #lastText cannot be used, if it cannot. */
  #textError: ConfigFileError | undefined;
  /** The message last logged, so that a poll does not log it again. */
  #lastError: string | undefined;
  #good: ConfigSnapshot | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(file: string | undefined, log: Logger) {
    this.#file = file;
    this.#log = log;
    if (file === undefined) this.#good = { objects: emptyConfig(), version: 1 };
  }

  /**
   * The current set; throws a ConfigFileError only if there has never been a
   * good one. Reads one at a time, each after the previous, so that every
   * caller sees the file as it was when it asked and a change counts once.
   */
  load(): Promise<ConfigSnapshot> {
    const next = this.#queue.then(() => this.#load());
    this.#queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #load(): Promise<ConfigSnapshot> {
    const file = this.#file;
    if (file === undefined) return this.#current();
    let text: string;
    try {
      text = await readText(file);
    } catch (err) {
      return this.#failed(
        err instanceof ConfigFileError
          ? err
          : new ConfigFileError(file, `cannot read: ${(err as Error).message}`, { cause: err }),
      );
    }
    if (text === this.#lastText) {
      if (this.#textError !== undefined) return this.#failed(this.#textError);
      this.#lastError = undefined;
      return this.#current();
    }
    this.#lastText = text;
    let parsed: ParsedConfig;
    try {
      parsed = parseConfig(text, file);
    } catch (err) {
      if (!(err instanceof ConfigFileError)) throw err;
      this.#textError = err;
      return this.#failed(err);
    }
    this.#textError = undefined;
    this.#lastError = undefined;
    const kept = new Set(parsed.invalid);
    for (const e of [...parsed.errors, ...parsed.invalid].sort((a, b) => a.document - b.document))
      this.#log.error(
        { err: e, file },
        kept.has(e)
          ? 'a Discovery spec is not valid: no handler runs for it; its devices go after the grace period'
          : 'skipping a bad config document',
      );
    this.#good = { objects: parsed.objects, version: (this.#good?.version ?? 0) + 1 };
    return this.#good;
  }

  #current(): ConfigSnapshot {
    if (this.#good !== undefined) return this.#good;
    throw new ConfigFileError(this.#file ?? '', 'has not been read successfully');
  }

  #failed(err: ConfigFileError): ConfigSnapshot {
    if (err.message !== this.#lastError) {
      this.#lastError = err.message;
      this.#log.error(
        { err, file: err.file },
        this.#good === undefined ? 'cannot use the config file' : 'keeping the last good config',
      );
    }
    if (this.#good === undefined) throw err;
    return this.#good;
  }
}

async function readText(file: string): Promise<string> {
  try {
    return (await readBoundedFile(file, { maxBytes: MAX_CONFIG_BYTES })).toString('utf8');
  } catch (err) {
    if (err instanceof BoundedFileError)
      throw new ConfigFileError(file, err.reason, { cause: err });
    throw err;
  }
}
