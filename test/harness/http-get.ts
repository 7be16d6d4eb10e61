import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';

export interface HttpGetOptions {
  /** CA that signed the server's certificate (https). */
  ca?: Buffer;
  /** Accept any server certificate (self-signed component endpoints). */
  insecure?: boolean;
  /** Bearer token. */
  token?: string;
}

/** GET over HTTP or HTTPS (by the URL) that resolves to the status and body; connection errors reject. */
export function httpGet(
  url: string,
  opts: HttpGetOptions = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      headers: opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {},
      timeout: 5000,
    };
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = url.startsWith('https:')
      ? httpsRequest(
          url,
          {
            ...options,
            agent: new Agent({
              ca: opts.ca,
              rejectUnauthorized: opts.insecure !== true,
              keepAlive: false,
            }),
          },
          onResponse,
        )
      : httpRequest(url, options, onResponse);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}
