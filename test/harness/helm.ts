import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MissingPeerError } from './processes.ts';

const run = promisify(execFile);

/** The helm release the tests run; scripts/build-helm.sh builds it. */
export const HELM_VERSION = process.env.HELM_VERSION ?? 'v4.3.2';

/** The chart in the tree. */
export const CHART_DIR = path.resolve(
  import.meta.dirname,
  '..',
  '..',
  'manifests',
  'helm',
  'edgebridge',
);

/** The helm binary, or MissingPeerError naming the script that builds it. */
export function helmBinary(): string {
  const cache = process.env.EDGEBRIDGE_CACHE ?? path.join(homedir(), '.cache', 'edgebridge');
  const file = path.join(cache, `helm-${HELM_VERSION}`, 'bin', 'helm');
  if (!existsSync(file)) {
    throw new MissingPeerError(
      file,
      'build it with scripts/build-helm.sh (scripts/test.sh does this)',
    );
  }
  return file;
}

/**
 * Runs helm with its own config and cache directories under `home`, so that
 * nothing of the machine's helm setup (repositories, plugins) takes part.
 */
export async function helm(
  home: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  return run(helmBinary(), args, {
    maxBuffer: 64 * 1024 * 1024,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_DATA_HOME: path.join(home, 'data'),
    },
  });
}

/** `helm template` of the chart as release `edgebridge` in `namespace`, CRDs included; `args` e.g. `--set`s. */
export async function helmTemplate(
  home: string,
  namespace: string,
  args: string[] = [],
): Promise<string> {
  const { stdout } = await helm(
    home,
    'template',
    'edgebridge',
    CHART_DIR,
    '--namespace',
    namespace,
    '--include-crds',
    ...args,
  );
  return stdout;
}
