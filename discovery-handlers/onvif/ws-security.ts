// WS-Security UsernameToken with PasswordDigest (ONVIF Core 5.9.4): the
// password itself never goes on the wire, only SHA-1(nonce + created + password).
import { createHash, randomBytes } from 'node:crypto';
import { escapeXml } from './soap-xml.ts';

const NS_WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const NS_WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const PASSWORD_DIGEST =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const BASE64_BINARY =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

/** A user name and password for one camera; never logged, never in a device. */
export interface Credentials {
  username: string;
  password: string;
}

/** Base64(SHA-1(nonce bytes + created + password)), the token's Password value. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')]))
    .digest('base64');
}

/** The wsse:Security header for one request: a fresh nonce and the current time. */
export function securityHeader(credentials: Credentials, now = new Date()): string {
  const nonce = randomBytes(16);
  const created = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return (
    `<wsse:Security s:mustUnderstand="1" xmlns:wsse="${NS_WSSE}" xmlns:wsu="${NS_WSU}">` +
    '<wsse:UsernameToken>' +
    `<wsse:Username>${escapeXml(credentials.username)}</wsse:Username>` +
    `<wsse:Password Type="${PASSWORD_DIGEST}">${passwordDigest(nonce, created, credentials.password)}</wsse:Password>` +
    `<wsse:Nonce EncodingType="${BASE64_BINARY}">${nonce.toString('base64')}</wsse:Nonce>` +
    `<wsu:Created>${created}</wsu:Created>` +
    '</wsse:UsernameToken></wsse:Security>'
  );
}
