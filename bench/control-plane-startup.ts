// How long the test control plane takes to become ready, component by component:
// the fixed cost that every test run pays before its first Kubernetes test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ControlPlane, K8S_VERSION } from '../test/harness/control-plane.ts';

const rounds = Number(process.env.ROUNDS ?? '3');
const rows: Record<string, number[]> = {
  'etcd + kube-apiserver ready': [],
  'kube-controller-manager ready': [],
  'kube-scheduler ready': [],
  'stop all': [],
};

for (let i = 0; i < rounds; i++) {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-cp-'));
  const cp = new ControlPlane(dir);
  try {
    let t = performance.now();
    await cp.ensure();
    rows['etcd + kube-apiserver ready']?.push(performance.now() - t);
    t = performance.now();
    await cp.ensure({ controllerManager: true });
    rows['kube-controller-manager ready']?.push(performance.now() - t);
    t = performance.now();
    await cp.ensure({ scheduler: true });
    rows['kube-scheduler ready']?.push(performance.now() - t);
    t = performance.now();
    await cp.stop();
    rows['stop all']?.push(performance.now() - t);
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`control plane ${K8S_VERSION} startup, ${rounds} rounds (ms)`);
console.log(
  `${'step'.padEnd(32)} ${'min'.padStart(8)} ${'median'.padStart(8)} ${'max'.padStart(8)}`,
);
for (const [step, values] of Object.entries(rows)) {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const fmt = (v: number | undefined): string => (v ?? NaN).toFixed(0).padStart(8);
  console.log(`${step.padEnd(32)} ${fmt(sorted[0])} ${fmt(median)} ${fmt(sorted.at(-1))}`);
}
