import { createRequire } from 'node:module';

type YamlModule = typeof import('yaml');

let yaml: YamlModule | undefined;

/**
 * The `yaml` package, loaded on first use: it costs an agent ~10 MB of memory,
 * and an agent in a cluster (in-cluster config, JSON devices files) never needs it.
 */
export function yamlModule(): YamlModule {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yaml;
}

/**
 * Text that is not valid YAML or JSON. It says where (file, line, column) and
 * what kind of mistake, never what the text holds: the parsers' own messages
 * quote the offending line, which may carry a password or a token.
 */
export class ParseError extends Error {
  readonly code = 'EDGEBRIDGE_PARSE';
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(
    format: 'YAML' | 'JSON',
    reason: string,
    at?: { file?: string | undefined; line?: number | undefined; column?: number | undefined },
  ) {
    const where = at?.line !== undefined ? ` at line ${at.line}, column ${at.column ?? 1}` : '';
    const file = at?.file !== undefined ? `${at.file}: ` : '';
    super(`${file}not valid ${format}${where}: ${reason}`);
    this.name = 'ParseError';
    this.line = at?.line;
    this.column = at?.column;
  }
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** The parser's error as a ParseError: its code and position only. */
function fromYamlError(err: unknown, text: string, file: string | undefined): ParseError {
  const e = err as { code?: unknown; pos?: unknown };
  if (err instanceof Error && typeof e.code === 'string' && /^[A-Z0-9_]+$/.test(e.code)) {
    const offset = Array.isArray(e.pos) && typeof e.pos[0] === 'number' ? e.pos[0] : undefined;
    return new ParseError('YAML', e.code.toLowerCase().replaceAll('_', ' '), {
      file,
      ...(offset !== undefined ? lineColumn(text, offset) : {}),
    });
  }
  // Alias errors (ReferenceError) name the alias, which is text from the file.
  return new ParseError('YAML', 'an alias is undefined or there are too many aliases', { file });
}

/** JSON.parse that throws a ParseError (Node's own message quotes the text). */
export function parseJson(text: string, file?: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const at = /at position (\d+)/.exec((err as Error).message);
    const pos = at !== null ? lineColumn(text, Number(at[1])) : undefined;
    throw new ParseError('JSON', 'syntax error', { file, ...pos });
  }
}

/**
 * Parses JSON without loading the YAML parser, and anything else as YAML (of
 * which JSON is a subset). Throws a ParseError naming `file`, never quoting it.
 */
export function parseJsonOrYaml(
  text: string,
  options: { maxAliasCount?: number; file?: string } = {},
): unknown {
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (YAML flow style, comments): the YAML parser decides.
    }
  }
  try {
    // logLevel 'error': warnings would go to process.emitWarning, quoting the text.
    return yamlModule().parse(text, {
      logLevel: 'error',
      prettyErrors: false,
      ...(options.maxAliasCount !== undefined ? { maxAliasCount: options.maxAliasCount } : {}),
    });
  } catch (err) {
    throw fromYamlError(err, text, options.file);
  }
}

/** Every document of a multi-document YAML text, each as the yaml package's Document; throws a ParseError on a syntax error. */
export function parseYamlDocuments(
  text: string,
  file?: string,
): ReturnType<YamlModule['parseAllDocuments']> {
  const docs = yamlModule().parseAllDocuments(text, { logLevel: 'error', prettyErrors: false });
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const first = doc.errors[0];
    if (first !== undefined) throw fromYamlError(first, text, file);
  }
  return docs;
}

/** Converts a parsed document to plain values; alias errors become a ParseError. */
export function documentToJs(
  doc: { toJS(options?: { maxAliasCount?: number }): unknown },
  options: { maxAliasCount?: number; file?: string } = {},
): unknown {
  try {
    return doc.toJS(
      options.maxAliasCount !== undefined ? { maxAliasCount: options.maxAliasCount } : {},
    );
  } catch (err) {
    throw fromYamlError(err, '', options.file);
  }
}
