// A process that runs the real uplink (spool, sender, node-broker source) from
// an uplink configuration given as JSON in argv[2], for tests that SIGKILL it
// and for the data-plane benchmark. Prints "ready" once started and a JSON
// stats line on every SIGUSR2; SIGTERM closes it cleanly.
import { pino } from 'pino';
import { startUplink, uplinkConfigFrom } from '../../src/uplink/index.ts';
import { applyHeapPolicy } from '../../src/util/heap-policy.ts';

// As the agent runs the uplink.
applyHeapPolicy();
const [, , configJson = '{}', stateDir = '.'] = process.argv;
const log = pino({ level: process.env.EDGEBRIDGE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const config = uplinkConfigFrom(JSON.parse(configJson), stateDir);
const running = await startUplink(config, {
  node: process.env.EDGEBRIDGE_NODE ?? 'node-1',
  log,
  backoff: { initialMs: 100, capMs: 1000 },
});
process.on('SIGUSR2', () => {
  process.stdout.write(
    `${JSON.stringify({ ...running.stats(), rss: process.memoryUsage.rss(), mem: process.memoryUsage() })}\n`,
  );
});
process.once('SIGTERM', () => {
  void running.close().then(() => process.exit(0));
});
running.done.catch(() => process.exit(3));
// Ready once it takes messages: a producer starting earlier would publish to
// a topic nobody subscribed to yet (on the very first start).
while (running.stats().source?.subscribed === false) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
process.stdout.write('ready\n');
