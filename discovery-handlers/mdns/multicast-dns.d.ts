// multicast-dns ships no types; mdns-socket.ts describes the part it uses.
declare module 'multicast-dns' {
  const multicastDns: (opts?: object) => unknown;
  export default multicastDns;
}
