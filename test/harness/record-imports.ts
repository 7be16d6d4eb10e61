// Loaded with `node --import` into a process under test: appends the URL of
// every module the process resolves to $EDGEBRIDGE_RECORD_IMPORTS, so that a
// test can check what a process really loaded (e.g. never the heavy Kubernetes client).
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.EDGEBRIDGE_RECORD_IMPORTS;
if (out === undefined || out === '') throw new Error('EDGEBRIDGE_RECORD_IMPORTS is not set');
const seen = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    if (!seen.has(result.url)) {
      seen.add(result.url);
      appendFileSync(out, `${result.url}\n`);
    }
    return result;
  },
});
