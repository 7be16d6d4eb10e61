// Discovery of local devices, end to end through a standalone agent:
//   USB hot-plug -> Device: a device added to a umockdev test bed (its uevent
//   sent) until the agent has registered it (edgebridge_devices, set once the
//   registry write is done); and detach -> Device gone, with
//   gracePeriodSeconds 1 (the grace period is in the figure). ROUNDS attach /
//   detach cycles (default 20); the table gives median and max.
//   ROUNDS=5 npm run bench -- discovery-local   (VERBOSE=1: each round; KEEP=1: keep the logs)
// Then MQTT sensors (bench/discovery-mqtt.ts, which also runs on its own).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from '../test/harness/http-get.ts';
import { writeStandaloneConfig } from '../test/harness/standalone-config.ts';
import { startUsbHotplug } from '../test/harness/umockdev.ts';

const ROUNDS = Math.min(Number(process.env.ROUNDS ?? 20), 250);
const GRACE_SECONDS = 1;
const CLI = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const work = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-discovery-local-'));
process.env.EDGEBRIDGE_TEST_RUN_DIR = work;

const config = path.join(work, 'edgebridge.yaml');
writeStandaloneConfig(config, {
  discoveries: [
    {
      namespace: 'default',
      name: 'bench',
      spec: {
        handler: { name: 'usb', details: { udevRules: ['SUBSYSTEM=="tty"'] } },
        gracePeriodSeconds: GRACE_SECONDS,
      },
    },
  ],
});
const tb = await startUsbHotplug({
  devices: [{ vendorId: 0x05e3, productId: 0x0608, port: '1', deviceClass: 0x09 }],
  command: process.execPath,
  args: [
    CLI,
    'agent',
    '--node',
    'bench-node',
    '--http-port',
    '0',
    '--http-host',
    '127.0.0.1',
    '--no-broker',
    '--log-level',
    'info',
    '--standalone',
    '--config',
    config,
    '--state-dir',
    path.join(work, 'state'),
  ],
});

try {
  const port = await until('the HTTP endpoint', () => {
    const line = readFileSync(tb.logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"http endpoint listening"'));
    return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
  });
  const devices = async (): Promise<number> => {
    const { body } = await httpGet(`http://127.0.0.1:${String(port)}/metrics`);
    const m = /^edgebridge_devices\{[^}]*discovery="bench"[^}]*\} (\d+)$/m.exec(body);
    return Number(m?.[1] ?? 0);
  };
  await until('the agent to be ready', async () =>
    (await httpGet(`http://127.0.0.1:${String(port)}/readyz`)).status === 200 ? true : undefined,
  );
  // The handler's first listing done: hot-plug from here on.
  await until('the USB listing', () =>
    readFileSync(tb.logFile, 'utf8').includes('"USB devices listed"') ? true : undefined,
  );
  const attach: number[] = [];
  const detach: number[] = [];
  for (let i = 0; i < ROUNDS; i += 1) {
    let t = performance.now();
    const added = await tb.add({
      vendorId: 0x2341,
      productId: 0x0043,
      // A new port each round: umockdev's remove_device leaves the bus/usb/devices
      // and class/tty links behind, and adding a device at those paths again aborts the test bed.
      port: String(2 + i),
      serial: `ARD-${i}`,
      interfaces: [{ interfaceClass: 0x02, driver: 'cdc_acm', nodes: [`tty/ttyACM${i}`] }],
    });
    await until('the Device', async () => ((await devices()) === 1 ? true : undefined));
    attach.push(performance.now() - t);
    t = performance.now();
    await tb.remove(added);
    await until('the Device to go', async () => ((await devices()) === 0 ? true : undefined));
    detach.push(performance.now() - t);
  }
  const stats = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(0)} ms, max ${(s.at(-1) ?? 0).toFixed(0)} ms`;
  };
  if (process.env.VERBOSE) console.log(attach.map((x) => x.toFixed(0)).join(' '));
  console.log(`discovery-local (${ROUNDS} rounds, load ${loadavg()[0]?.toFixed(1)}, umockdev)`);
  console.log(`  USB hot-plug -> Device registered:      ${stats(attach)}  (target < 1000 ms)`);
  console.log(`  USB detach -> Device gone (grace ${GRACE_SECONDS} s): ${stats(detach)}`);
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
} finally {
  await tb.stop();
}

spawnSync(process.execPath, [path.join(import.meta.dirname, 'discovery-mqtt.ts')], {
  stdio: 'inherit',
});

/** Polls `check` every 5 ms until it gives a value; fails after 30 s. */
async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log ${tb.logFile}`);
    await sleep(5);
  }
}
