import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { pino } from 'pino';
import { defaultInterfaces } from '../../discovery-handlers/mdns/mdns-socket.ts';
import { PeerLog } from '../../discovery-handlers/mdns/peer-log.ts';

describe('PeerLog', () => {
  it('logs at most one line per peer per minute, with the count it held back', () => {
    mock.timers.enable({ apis: ['Date'], now: 0 });
    try {
      const lines: { peer: string; suppressed: number }[] = [];
      const log = new PeerLog(
        pino(
          { level: 'warn' },
          { write: (l: string) => lines.push(JSON.parse(l) as (typeof lines)[number]) },
        ),
      );
      for (let i = 0; i < 1000; i += 1) log.warn('10.0.0.1', {}, 'bad packet');
      log.warn('10.0.0.2', {}, 'bad packet');
      mock.timers.tick(59_999);
      log.warn('10.0.0.1', {}, 'bad packet');
      mock.timers.tick(1);
      log.warn('10.0.0.1', {}, 'bad packet');
      assert.deepEqual(
        lines.map((l) => [l.peer, l.suppressed]),
        [
          ['10.0.0.1', 0],
          ['10.0.0.2', 0],
          ['10.0.0.1', 1000],
        ],
      );
    } finally {
      mock.timers.reset();
    }
  });
});

describe('the default mDNS interfaces', () => {
  const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({
    address,
    netmask: '255.255.255.0',
    family: 'IPv4',
    mac: '00:00:00:00:00:00',
    internal,
    cidr: `${address}/24`,
  });

  it('are the IPv4 links that are not loopback, container or overlay links', () => {
    assert.deepEqual(
      defaultInterfaces({
        lo: [v4('127.0.0.1', true)],
        eth0: [v4('192.168.1.5')],
        enp3s0: [v4('10.1.0.5')],
        docker0: [v4('172.17.0.1')],
        cni0: [v4('10.244.0.1')],
        'flannel.1': [v4('10.244.0.0')],
        vethab12: [v4('169.254.1.1')],
        wlan0: [],
      }),
      ['eth0', 'enp3s0'],
    );
  });
});
