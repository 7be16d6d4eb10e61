// The benchmarks measure the agent and the controller with the flags of
// test/harness/node-flags.ts: the image, the uplink patch and the controller's
// Deployments must run them with the same ones.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { AGENT_NODE_ARGS, CONTROLLER_NODE_ARGS, UPLINK_NODE_ARGS } from '../harness/node-flags.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = '/opt/edgebridge/dist/src/cli/main.js';

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
/** The final stage's NODE_OPTIONS, split into flags. */
const nodeOptions = (/^ENV NODE_OPTIONS=(.*)$/m.exec(dockerfile)?.[1] ?? '')
  .split(' ')
  .filter((f) => f !== '');

/** The flags between `node` and the script in an exec-form command. */
function flagsOf(command: unknown): string[] {
  assert.ok(Array.isArray(command), `not an exec-form command: ${JSON.stringify(command)}`);
  assert.equal(command[0], 'node');
  assert.equal(command.at(-1), MAIN);
  return command.slice(1, -1) as string[];
}

describe('node flags of the image', () => {
  it('the Dockerfile runs the agent with AGENT_NODE_ARGS', () => {
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1];
    assert.ok(entrypoint !== undefined, 'the Dockerfile has no ENTRYPOINT');
    const flags = [...nodeOptions, ...flagsOf(JSON.parse(entrypoint))];
    assert.deepEqual(flags.sort(), [...AGENT_NODE_ARGS].sort());
  });

  it('the uplink patch runs it with UPLINK_NODE_ARGS', () => {
    const patch = parse(
      readFileSync(path.join(ROOT, 'manifests/samples/uplink-patch.yaml'), 'utf8'),
    ) as { op: string; path: string; value: unknown }[];
    const command = patch.find((p) => p.path === '/spec/template/spec/containers/0/command');
    assert.ok(command !== undefined, 'the uplink patch sets no command');
    // The container's NODE_OPTIONS, if the patch sets one, replaces the image's.
    const env = patch.find((p) => p.path === '/spec/template/spec/containers/0/env/-')?.value as
      { name: string; value: string } | undefined;
    const options =
      env?.name === 'NODE_OPTIONS' ? env.value.split(' ').filter((f) => f !== '') : nodeOptions;
    const flags = [...options, ...flagsOf(command.value)];
    assert.deepEqual(flags.sort(), [...UPLINK_NODE_ARGS].sort());
  });

  it("the controller's Deployments (kustomize and chart) run it with CONTROLLER_NODE_ARGS", () => {
    for (const file of [
      'manifests/controller/deployment.yaml',
      'manifests/helm/edgebridge/templates/controller-deployment.yaml',
    ]) {
      // The chart's template is not YAML until rendered: its command line is.
      const line = /^\s*command: (\[.*\])$/m.exec(readFileSync(path.join(ROOT, file), 'utf8'));
      assert.ok(line?.[1] !== undefined, `${file} sets no command`);
      const flags = [...nodeOptions, ...flagsOf(parse(line[1]))];
      assert.deepEqual(flags.sort(), [...CONTROLLER_NODE_ARGS].sort(), file);
    }
  });
});
