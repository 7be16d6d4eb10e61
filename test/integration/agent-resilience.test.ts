import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { testNamespace } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { scratchDir } from '../harness/workdir.ts';

// This file stops and restarts the API server, so it has a control plane of its
// own rather than the run's shared one.
describe('the agent while the API server is away', () => {
  let started: ReturnType<typeof make> | undefined;
  let agent: AgentProcess | undefined;
  let controller: ControllerProcess | undefined;
  const make = async () => {
    const cp = new ControlPlane(scratchDir('private-control-plane'));
    const info = await cp.ensure();
    await installCrds(info);
    await installAgentRbac(info);
    await installControllerRbac(info);
    // Devices come from the controller; it rides out the outage too.
    const ns = await testNamespace(info, 'outage');
    controller = await startController(info, { namespace: ns.name });
    return { cp, info, ns, objects: edgeObjects(info, ns.name), dir: scratchDir('outage') };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await agent?.stop();
    await controller?.stop();
    await (await settled(started))?.cp.stop();
  });

  it('keeps running, retries, and converges once the API server is back, without duplicates or lost deletions', async () => {
    const { cp, objects, dir, info } = await setup();
    const file = path.join(dir, 'devices.yaml');
    writeDevicesFile(file, [{ id: 'd1' }, { id: 'd2' }]);
    await objects.createDiscovery('outage', {
      handler: { name: 'simulated', details: { file } },
      intervalSeconds: 1,
      gracePeriodSeconds: 1,
    });
    agent = await startAgent({
      node: 'outage-node',
      registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
    });
    await eventually('d1 and d2', async () =>
      (await objects.devices('outage')).length === 2 ? true : undefined,
    );
    const listsBefore = await agent.metric('edgebridge_registry_requests_total', {
      verb: 'list',
      resource: 'discoveries',
    });

    await cp.stopApiServer();
    // While it is away, d1 goes and d3 comes: a deletion and a creation the agent must not lose.
    writeDevicesFile(file, [{ id: 'd2' }, { id: 'd3' }]);
    await sleep(8000);
    assert.equal((await agent.get('/healthz')).status, 200, 'the agent is still serving');
    assert.ok(
      (await agent.metric('edgebridge_reconcile_errors_total')) > 0,
      'the agent saw the failures',
    );
    await cp.startApiServer();

    const ids = await eventually(
      'd2 and d3 only',
      async () => {
        const list = await objects.devices('outage');
        const found = list.map((d) => d.spec.id).sort();
        return found.join() === 'd2,d3' ? found : undefined;
        // Generous: the agent's backoff may have reached its 30 s cap during the outage.
      },
      120_000,
    );
    assert.deepEqual(ids, ['d2', 'd3']);
    // The watch was re-established: a Discovery made after the outage is picked up.
    writeDevicesFile(path.join(dir, 'later.yaml'), [{ id: 'late-1' }]);
    await objects.createDiscovery('later', {
      handler: { name: 'simulated', details: { file: path.join(dir, 'later.yaml') } },
      intervalSeconds: 1,
    });
    await eventually('the later discovery to register its device', async () =>
      (await objects.devices('later')).length === 1 ? true : undefined,
    );
    assert.ok(
      (await agent.metric('edgebridge_registry_requests_total', {
        verb: 'list',
        resource: 'discoveries',
      })) > listsBefore,
      'the agent relisted Discoveries after the outage',
    );
  });
});
