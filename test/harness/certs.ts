import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireProgram } from './processes.ts';

const run = promisify(execFile);

export interface ControlPlaneCerts {
  caCert: string;
  caKey: string;
  /** Serving certificate for kube-apiserver on 127.0.0.1/localhost. */
  servingCert: string;
  servingKey: string;
  /** Key pair that signs and verifies service account tokens. */
  serviceAccountKey: string;
  serviceAccountPub: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA (ca.key, ca.crt via `f`) valid for a week. */
async function makeCa(openssl: string, f: (name: string) => string, cn: string): Promise<void> {
  await run(openssl, [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '7',
    '-subj',
    `/CN=${cn}`,
  ]);
}

/** Makes a throw-away CA, an API server serving certificate and a service account key pair with openssl. */
export async function makeControlPlaneCerts(dir: string): Promise<ControlPlaneCerts> {
  const openssl = requireProgram('openssl');
  const f = (name: string): string => path.join(dir, name);
  await makeCa(openssl, f, 'edgebridge-test-ca');
  await run(openssl, [
    'req',
    ...EC_KEY,
    '-keyout',
    f('serving.key'),
    '-out',
    f('serving.csr'),
    '-subj',
    '/CN=kube-apiserver',
  ]);
  await writeFile(
    f('serving.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
      '',
    ].join('\n'),
  );
  await run(openssl, [
    'x509',
    '-req',
    '-in',
    f('serving.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('serving.crt'),
    '-days',
    '7',
    '-extfile',
    f('serving.ext'),
  ]);
  await run(openssl, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('sa.key')]);
  await run(openssl, ['ec', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);
  return {
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    servingCert: f('serving.crt'),
    servingKey: f('serving.key'),
    serviceAccountKey: f('sa.key'),
    serviceAccountPub: f('sa.pub'),
  };
}

export interface MqttTlsCerts {
  ca: string;
  caKey: string;
  /** Server certificate for 127.0.0.1 / localhost. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (CN edgebridge-node) signed by the same CA. */
  clientCert: string;
  clientKey: string;
}

/** A throw-away CA with a server and a client certificate, for TLS to a broker. */
export async function makeMqttTlsCerts(dir: string): Promise<MqttTlsCerts> {
  const openssl = requireProgram('openssl');
  const f = (name: string): string => path.join(dir, name);
  await makeCa(openssl, f, 'edgebridge-test-mqtt-ca');
  const sign = async (name: string, cn: string, ext: string[]): Promise<void> => {
    await run(openssl, [
      'req',
      ...EC_KEY,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    ]);
    await writeFile(f(`${name}.ext`), [...ext, ''].join('\n'));
    await run(openssl, [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '7',
      '-extfile',
      f(`${name}.ext`),
    ]);
  };
  await sign('server', 'cloud-broker', [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  await sign('client', 'edgebridge-node', [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=clientAuth',
  ]);
  return {
    ca: f('ca.crt'),
    caKey: f('ca.key'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/** A client certificate (CN `cn`, O `org`) signed by an existing CA, for certificate authentication. */
export async function signClientCert(opts: {
  caCert: string;
  caKey: string;
  dir: string;
  cn: string;
  org?: string;
}): Promise<{ cert: string; key: string }> {
  const openssl = requireProgram('openssl');
  const f = (name: string): string => path.join(opts.dir, name);
  const subject = `${opts.org !== undefined ? `/O=${opts.org}` : ''}/CN=${opts.cn}`;
  await run(openssl, [
    'req',
    ...EC_KEY,
    '-keyout',
    f('client.key'),
    '-out',
    f('client.csr'),
    '-subj',
    subject,
  ]);
  await writeFile(
    f('client.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature',
      'extendedKeyUsage=clientAuth',
      '',
    ].join('\n'),
  );
  await run(openssl, [
    'x509',
    '-req',
    '-in',
    f('client.csr'),
    '-CA',
    opts.caCert,
    '-CAkey',
    opts.caKey,
    '-CAcreateserial',
    '-CAserial',
    f('ca.srl'),
    '-out',
    f('client.crt'),
    '-days',
    '1',
    '-extfile',
    f('client.ext'),
  ]);
  return { cert: f('client.crt'), key: f('client.key') };
}
