import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface VersionInfo {
  version: string;
  node: string;
  platform: string;
}

/** The package's version, read from its package.json (found from here whether run from src/ or dist/). */
export function versionInfo(): VersionInfo {
  let dir = import.meta.dirname;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'edgebridge' && typeof pkg.version === 'string') {
        return {
          version: pkg.version,
          node: process.version,
          platform: `${process.platform}/${process.arch}`,
        };
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('edgebridge: package.json not found above ' + import.meta.dirname);
    dir = parent;
  }
}
