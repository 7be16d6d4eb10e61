// Polls an agent's /metrics every 5 ms and prints a JSON line
// {"t": <ms>, "devices": {<discovery>: n}} whenever a discovery's device count
// changes. Run where the agent's port is reachable (inside its namespace):
//   node metrics-watch.ts PORT
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from '../../test/harness/http-get.ts';

const port = process.argv[2] ?? '';
let last = '';
process.once('SIGTERM', () => process.exit(0));
for (;;) {
  try {
    const { body } = await httpGet(`http://127.0.0.1:${port}/metrics`);
    const devices: Record<string, number> = {};
    for (const m of body.matchAll(/^edgebridge_devices\{[^}]*discovery="([^"]+)"[^}]*\} (\d+)$/gm))
      devices[m[1] ?? ''] = Number(m[2]);
    const text = JSON.stringify(devices);
    if (text !== last) {
      last = text;
      console.log(JSON.stringify({ t: Date.now(), devices }));
    }
  } catch {
    // not up yet
  }
  await sleep(5);
}
