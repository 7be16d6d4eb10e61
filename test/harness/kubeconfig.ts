import { writeFileSync } from 'node:fs';

/** Writes a kubeconfig (JSON is valid kubeconfig YAML) for one bearer-token user. */
export function writeKubeconfig(
  file: string,
  opts: { server: string; caFile: string; user: string; token: string },
): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'edgebridge-test',
        cluster: { server: opts.server, 'certificate-authority': opts.caFile },
      },
    ],
    users: [{ name: opts.user, user: { token: opts.token } }],
    contexts: [{ name: opts.user, context: { cluster: 'edgebridge-test', user: opts.user } }],
    'current-context': opts.user,
  };
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
}
