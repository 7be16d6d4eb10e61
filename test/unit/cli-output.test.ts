import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { Device, Discovery, HandlerName } from '../../src/api/types.ts';
import { UsageError } from '../../src/cli/errors.ts';
import {
  age,
  deviceColumns,
  discoveryColumns,
  humanDuration,
  listObject,
  noneFound,
  parseOutputFormat,
  renderObject,
  renderTable,
  TablePrinter,
} from '../../src/cli/output.ts';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function device(
  name: string,
  opts: { namespace?: string; nodes?: string[]; handler?: 'onvif' | 'usb'; ageMs?: number } = {},
): Device {
  // Objects from a cluster may name handlers this build lacks (version skew); rendering must not care.
  const handler = (opts.handler ?? 'onvif') as HandlerName;
  return {
    apiVersion: 'edgebridge.io/v1alpha1',
    kind: 'Device',
    metadata: {
      name,
      namespace: opts.namespace ?? 'default',
      creationTimestamp: new Date(NOW - (opts.ageMs ?? 90 * S)).toISOString(),
    },
    spec: {
      discovery: opts.handler === 'usb' ? 'sticks' : 'cams',
      handler,
      shared: opts.handler !== 'usb',
      id: `urn:${name}`,
      properties: { A: '1', B: '2' },
      capacity: 2,
    },
    status: { nodes: (opts.nodes ?? ['node-a']).map((n) => ({ name: n })) },
  };
}

describe('humanDuration', () => {
  it('prints ages the way kubectl does', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [-500, '0s'],
      [-5 * S, '<invalid>'],
      [59 * S, '59s'],
      [119 * S, '119s'],
      [2 * M, '2m'],
      [2 * M + 30 * S, '2m30s'],
      [9 * M + 59 * S, '9m59s'],
      [10 * M + 30 * S, '10m'],
      [179 * M, '179m'],
      [3 * H, '3h'],
      [3 * H + 30 * M, '3h30m'],
      [8 * H + 30 * M, '8h'],
      [47 * H, '47h'],
      [48 * H, '2d'],
      [50 * H, '2d2h'],
      [8 * D, '8d'],
      [729 * D, '729d'],
      [730 * D, '2y'],
      [740 * D, '2y10d'],
      [8 * 365 * D, '8y'],
      [20 * 365 * D + 100 * D, '20y'],
    ];
    for (const [ms, expected] of cases) assert.equal(humanDuration(ms), expected, `${ms} ms`);
  });

  it('says <unknown> for an object without a creation time', () => {
    assert.equal(age({ name: 'x' }, NOW), '<unknown>');
    assert.equal(age({ name: 'x', creationTimestamp: 'garbage' }, NOW), '<unknown>');
    assert.equal(age({ name: 'x', creationTimestamp: '2025-06-01T11:59:00Z' }, NOW), '60s');
  });
});

describe('device tables', () => {
  const devices = [
    device('cams-0a1b2c', { nodes: ['node-a', 'node-b'] }),
    device('sticks-9f8e7d6c5b', { namespace: 'lab', handler: 'usb', nodes: [], ageMs: 3 * D }),
  ];

  it('prints NAME, HANDLER, SHARED, NODES and AGE in aligned columns', () => {
    assert.equal(
      renderTable(devices, deviceColumns, { wide: false, allNamespaces: false, now: NOW }),
      [
        'NAME                HANDLER   SHARED   NODES           AGE',
        'cams-0a1b2c         onvif     true     node-a,node-b   90s',
        'sticks-9f8e7d6c5b   usb       false    <none>          3d',
        '',
      ].join('\n'),
    );
  });

  it('adds NAMESPACE first with -A, and DISCOVERY, ID, CAPACITY, PROPERTIES with -o wide', () => {
    assert.equal(
      renderTable(devices, deviceColumns, { wide: true, allNamespaces: true, now: NOW }),
      [
        'NAMESPACE   NAME                HANDLER   SHARED   NODES           AGE   DISCOVERY   ID                      CAPACITY   PROPERTIES',
        'default     cams-0a1b2c         onvif     true     node-a,node-b   90s   cams        urn:cams-0a1b2c         2          2',
        'lab         sticks-9f8e7d6c5b   usb       false    <none>          3d    sticks      urn:sticks-9f8e7d6c5b   2          2',
        '',
      ].join('\n'),
    );
  });

  it('prints nothing for no objects, and kubectl’s note for stderr', () => {
    assert.equal(
      renderTable([], deviceColumns, { wide: false, allNamespaces: false, now: NOW }),
      '',
    );
    assert.equal(noneFound('default'), 'No resources found in default namespace.\n');
    assert.equal(noneFound(undefined), 'No resources found\n');
  });

  it('keeps every row on one line whatever a device id holds', () => {
    const odd = device('odd');
    odd.spec.id = 'line1\nline2\r\u001b[31mred';
    const out = renderTable([odd], deviceColumns, { wide: true, allNamespaces: false, now: NOW });
    assert.equal(out.split('\n').length, 3);
    assert.ok(!out.includes('\u001b'));
  });

  it('prints the header once and lines later rows up with the first table (--watch)', () => {
    const printer = new TablePrinter(deviceColumns, { wide: false, allNamespaces: false });
    const first = printer.render([device('cams-0a1b2c')], NOW);
    const later = printer.render([device('cams-1')], NOW);
    assert.equal(first.split('\n')[0], 'NAME          HANDLER   SHARED   NODES    AGE');
    assert.equal(later, 'cams-1        onvif     true     node-a   90s\n');
    assert.equal(printer.render([], NOW), '');
  });
});

describe('discovery tables', () => {
  const discovery = (name: string, status?: Discovery['status']): Discovery => ({
    apiVersion: 'edgebridge.io/v1alpha1',
    kind: 'Discovery',
    metadata: { name, namespace: 'default', creationTimestamp: '2025-06-01T11:00:00Z' },
    spec: { handler: { name: 'mdns' } },
    ...(status !== undefined ? { status } : {}),
  });

  it('prints NAME, HANDLER, DEVICES, AGE and, wide, DETAILSVALID', () => {
    const items = [
      discovery('printers', {
        devices: 4,
        conditions: [
          {
            type: 'DetailsValid',
            status: 'False',
            reason: 'Invalid',
            message: 'no',
            lastTransitionTime: '2025-06-01T11:00:00Z',
          },
        ],
      }),
      discovery('new'),
    ];
    assert.equal(
      renderTable(items, discoveryColumns, { wide: true, allNamespaces: false, now: NOW }),
      [
        'NAME       HANDLER   DEVICES   AGE   DETAILSVALID',
        'printers   mdns      4         60m   False',
        'new        mdns      <none>    60m   <none>',
        '',
      ].join('\n'),
    );
    assert.equal(
      renderTable(items, discoveryColumns, { wide: false, allNamespaces: true, now: NOW }).split(
        '\n',
      )[0],
      'NAMESPACE   NAME       HANDLER   DEVICES   AGE',
    );
  });
});

describe('lists', () => {
  it('prints a Kubernetes-style List as JSON (kubectl indent) and as YAML', () => {
    const items = [device('a'), device('b')];
    const json = renderObject(listObject('DeviceList', items), 'json');
    assert.ok(
      json.startsWith('{\n    "apiVersion": "v1",\n    "kind": "DeviceList",\n    "items": ['),
    );
    assert.ok(json.endsWith('}\n'));
    assert.deepEqual(JSON.parse(json), { apiVersion: 'v1', kind: 'DeviceList', items });
    const yaml = renderObject(listObject('DiscoveryList', []), 'yaml');
    assert.deepEqual(parse(yaml), { apiVersion: 'v1', kind: 'DiscoveryList', items: [] });
    assert.deepEqual(parse(renderObject(listObject('DeviceList', items), 'yaml')), {
      apiVersion: 'v1',
      kind: 'DeviceList',
      items,
    });
  });

  it('accepts only table, wide, json and yaml as -o', () => {
    for (const f of ['table', 'wide', 'json', 'yaml']) assert.equal(parseOutputFormat(f), f);
    for (const f of ['xml', '', 'JSON', 'jsonpath={.items}']) {
      assert.throws(() => parseOutputFormat(f), UsageError);
    }
  });
});
