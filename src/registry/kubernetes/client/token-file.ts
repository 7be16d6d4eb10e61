import { statSync } from 'node:fs';
import { readBoundedFileSync } from '../../../util/bounded-file.ts';
import { KubeConfigError } from './errors.ts';

/** A projected token is a few kilobytes. */
const MAX_TOKEN_BYTES = 64 * 1024;

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
      const token = readBoundedFileSync(this.file, { maxBytes: MAX_TOKEN_BYTES })
        .toString('utf8')
        .trim();
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
