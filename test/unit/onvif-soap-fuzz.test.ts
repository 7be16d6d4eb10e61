import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  readDeviceInformation,
  readMacAddress,
  readMediaUri,
  readNotifications,
  readProfiles,
  readServiceUrls,
  readSubscription,
} from '../../discovery-handlers/onvif/onvif-answers.ts';
import { parseSoap } from '../../discovery-handlers/onvif/soap-xml.ts';
import { seededRandom } from '../harness/seeded-random.ts';

const env = (body: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" ' +
  'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" ' +
  'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" ' +
  'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:wsa="http://www.w3.org/2005/08/addressing">' +
  `<env:Body>${body}</env:Body></env:Envelope>`;

// Answers as cameras send them, the starting points of every mutation.
const bases = [
  env(
    '<tds:GetDeviceInformationResponse><tds:Manufacturer>ACME</tds:Manufacturer><tds:Model>X1</tds:Model>' +
      '<tds:FirmwareVersion>1.0</tds:FirmwareVersion><tds:SerialNumber>S1</tds:SerialNumber>' +
      '<tds:HardwareId>H</tds:HardwareId></tds:GetDeviceInformationResponse>',
  ),
  env(
    '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>' +
      '<tt:Info><tt:HwAddress>00:11:22:33:44:55</tt:HwAddress></tt:Info></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>',
  ),
  env(
    '<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://10.0.0.5/onvif/media</tt:XAddr></tt:Media>' +
      '<tt:Events><tt:XAddr>http://10.0.0.5/onvif/events</tt:XAddr></tt:Events></tds:Capabilities></tds:GetCapabilitiesResponse>',
  ),
  env(
    '<trt:GetProfilesResponse><trt:Profiles token="p1"><tt:Name>Main</tt:Name></trt:Profiles>' +
      '<trt:Profiles token="p2"><tt:Name>Sub</tt:Name></trt:Profiles></trt:GetProfilesResponse>',
  ),
  env(
    '<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://admin:secret-pw@10.0.0.5:554/s1</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>',
  ),
  env(
    '<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>http://10.0.0.5/pp/1</wsa:Address>' +
      '</tev:SubscriptionReference></tev:CreatePullPointSubscriptionResponse>',
  ),
  env(
    '<tev:PullMessagesResponse><wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic>' +
      '<wsnt:Message><tt:Message UtcTime="2026-01-01T00:00:00Z"><tt:Source><tt:SimpleItem Name="Source" Value="V1"/></tt:Source>' +
      '<tt:Data><tt:SimpleItem Name="State" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>' +
      '</tev:PullMessagesResponse>',
  ),
  env(
    '<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value>' +
      '</env:Subcode></env:Code><env:Reason><env:Text>no</env:Text></env:Reason></env:Fault>',
  ),
];

function mutate(rnd: () => number, s: string): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const steps = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < steps; k++) {
    const at = Math.floor(rnd() * s.length);
    switch (Math.floor(rnd() * 7)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at);
        break;
      case 2: {
        const len = Math.floor(rnd() * 200);
        s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + Math.floor(rnd() * 50)) + s.slice(at);
        break;
      }
      case 3:
        s = s.slice(0, at) + pick(bases).slice(Math.floor(rnd() * 400));
        break;
      case 4:
        s =
          s.slice(0, at) +
          pick(['&lol;', '&amp;', '&#0;', '&#x110000;', '&', '&#7;', ']]>', '<![CDATA[x']) +
          s.slice(at);
        break;
      case 5:
        s = s.slice(0, at) + '<a>'.repeat(Math.floor(rnd() * 2000)) + s.slice(at);
        break;
      default:
        s = s.replaceAll(pick(['tt:', 'env:', 'tds:', 'wsnt:']), pick(['x:', '', 'env:', 'a:b:']));
    }
  }
  return s;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

describe('the SOAP answer readers under 10,000 seeded mutations', () => {
  it('never throw, and give capped, printable values and URIs without userinfo', () => {
    const rnd = seededRandom(0x50a9);
    let bodies = 0;
    for (let i = 0; i < 10_000; i++) {
      const text = mutate(rnd, bases[i % bases.length] ?? '');
      const r = parseSoap(text);
      if (!r.ok || !('body' in r)) continue;
      bodies++;
      const b = r.body;
      const info = readDeviceInformation(b);
      for (const v of Object.values(info) as string[]) {
        assert.ok(v.length <= 256 && !CONTROL.test(v), `input ${i}: ${JSON.stringify(v)}`);
      }
      const mac = readMacAddress(b);
      assert.ok(mac === undefined || /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac));
      const urls = readServiceUrls(b);
      for (const u of [urls.media, urls.events, readSubscription(b)])
        assert.ok(u === undefined || (u.username === '' && u.password === ''));
      const uri = readMediaUri(b, 'GetStreamUriResponse');
      assert.ok(uri === undefined || !uri.includes('secret-pw'), `input ${i}: ${uri}`);
      for (const p of readProfiles(b)) assert.ok(p.token !== '' && !CONTROL.test(p.token));
      for (const n of readNotifications(b)) {
        assert.ok(!CONTROL.test(n.topic));
        assert.ok(Object.keys(n.data).length <= 16);
      }
    }
    // The mutations must leave enough readable envelopes for the readers to be exercised.
    assert.ok(bodies > 1000, `only ${bodies} readable envelopes`);
  });
});
