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

/** Parses JSON without loading the YAML parser, and anything else as YAML (of which JSON is a subset). */
export function parseJsonOrYaml(text: string, options?: { maxAliasCount?: number }): unknown {
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all (YAML flow style, comments): the YAML parser decides.
    }
  }
  return yamlModule().parse(text, options);
}
