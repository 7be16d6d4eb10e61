// dns-packet ships no types; the tests use encode and decode only.
declare module 'dns-packet' {
  export function encode(packet: object): Buffer;
  export function decode(buf: Buffer): {
    type?: string;
    answers?: unknown[];
    additionals?: unknown[];
  };
}
