// Opens the spool in argv[2] and prints its stats and log lines as JSON: run by
// damaged-file.test.ts without the capabilities that let root read any file.
import { openSpool } from '../../../src/spool/index.ts';

const dir = process.argv[2] ?? '';
const logged: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
const spool = await openSpool({
  dir,
  maxBytes: 1024 * 1024,
  onFull: 'block',
  sync: 'always',
  log: {
    warn: (fields, msg) => void logged.push({ level: 'warn', fields, msg }),
    error: (fields, msg) => void logged.push({ level: 'error', fields, msg }),
  },
});
await spool.append([{ key: 'k', topic: 't', payload: Buffer.from('x'), timestamp: 1 }]);
const stats = spool.stats();
await spool.close();
process.stdout.write(JSON.stringify({ stats, logged }));
