import { readFileSync, statSync } from 'node:fs';
import { KubeConfigError } from './errors.ts';

/**
 * A bearer token kept in a file (a projected service account token, a
 * kubeconfig tokenFile). The kubelet rotates such tokens by replacing the file,
 * so it is read again whenever its modification time or size changes.
 */
export class TokenFile {
  readonly file: string;
  #stamp = '';
  #token = '';

  constructor(file: string) {
    this.file = file;
  }

  /** The current token; throws KubeConfigError if the file cannot be read or is empty. */
  read(): string {
    let stamp: string;
    try {
      const st = statSync(this.file);
      stamp = `${st.mtimeMs}/${st.size}/${st.ino}`;
      if (stamp === this.#stamp) return this.#token;
      const token = readFileSync(this.file, 'utf8').trim();
      if (token === '') throw new KubeConfigError(`token file ${this.file} is empty`);
      this.#token = token;
      this.#stamp = stamp;
      return token;
    } catch (err) {
      if (err instanceof KubeConfigError) throw err;
      throw new KubeConfigError(`cannot read token file ${this.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}
