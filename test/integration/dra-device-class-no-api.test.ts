// On a cluster without resource.k8s.io/v1 (Kubernetes < 1.34), the
// controller's DeviceClass reconciler says so once and stays idle, and the
// controller does the rest of its job. Its own control plane: the API group
// is turned off with kube-apiserver's --runtime-config.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, VERSION, type Discovery } from '../../src/api/types.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually } from '../harness/devices.ts';
import { kubeConfigFor, testNamespace } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { scratchDir } from '../harness/workdir.ts';

const NOT_SERVED = /does not serve resource\.k8s\.io\/v1/;

describe('the controller on a cluster without resource.k8s.io/v1', () => {
  let controlPlane: ControlPlane | undefined;
  let controller: ControllerProcess | undefined;
  const setup = lazy(async () => {
    controlPlane = new ControlPlane(scratchDir('no-dra-control-plane'), {
      apiServerArgs: ['--runtime-config=resource.k8s.io/v1=false'],
    });
    const info = await controlPlane.ensure();
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'no-dra');
    controller = await startController(info, { namespace: ns.name, name: 'no-dra-controller' });
    return { info, ns: ns.name };
  });
  after(async () => {
    await controller?.stop();
    await settled(setup());
    await controlPlane?.stop();
  });

  it('logs once that it makes no DeviceClasses, and still writes Discovery status', async () => {
    const { info, ns } = await setup();
    await edgeObjects(info, ns).createDiscovery('cams', {
      handler: { name: 'simulated', details: {} },
    });
    const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
    await eventually('the Discovery’s status', async () => {
      const d = (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'discoveries',
        name: 'cams',
      })) as Discovery;
      return d.status?.conditions?.some((c) => c.type === 'NodesReporting') === true
        ? true
        : undefined;
    });
    const lines = controller?.logLines() ?? [];
    assert.equal(lines.filter((l) => NOT_SERVED.test(String(l.msg))).length, 1);
    // Idle: no watch of DeviceClasses that fails and retries.
    assert.deepEqual(
      lines.filter((l) => l.watch === 'deviceclasses' && Number(l.level) >= 40),
      [],
    );
    assert.equal((await controller?.get('/healthz'))?.status, 200);
  });
});
