// Runs one benchmark by name (a file in bench/ without .ts), or lists them.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const dir = import.meta.dirname;
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3));
const [name] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  console.log(
    `usage: npm run bench -- <name>\n\nbenchmarks:\n${names.map((n) => `  ${n}`).join('\n')}`,
  );
  process.exitCode = name === undefined ? 0 : 2;
} else {
  const result = spawnSync(process.execPath, [path.join(dir, `${name}.ts`)], { stdio: 'inherit' });
  process.exitCode = result.status ?? 1;
}
