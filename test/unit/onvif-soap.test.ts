import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentialsBook } from '../../discovery-handlers/onvif/credentials.ts';
import { labelValue, profileSuffix, redact } from '../../discovery-handlers/onvif/describe.ts';
import {
  digestResponse,
  parseDigestChallenge,
} from '../../discovery-handlers/onvif/http-digest.ts';
import {
  MAX_PROFILES,
  readDeviceInformation,
  readMacAddress,
  readMediaUri,
  readNotifications,
  readProfiles,
  readServiceUrls,
  readSubscription,
} from '../../discovery-handlers/onvif/onvif-answers.ts';
import { parseSoap } from '../../discovery-handlers/onvif/soap-xml.ts';
import { passwordDigest, securityHeader } from '../../discovery-handlers/onvif/ws-security.ts';

/** A Body as one vendor's camera sends it: SOAP-ENV prefixes, one line. */
const vendor = (body: string): string =>
  '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" ' +
  'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" ' +
  'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" ' +
  'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:wsa5="http://www.w3.org/2005/08/addressing">' +
  `<SOAP-ENV:Header/><SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

function body(xml: string): Record<string, unknown> {
  const r = parseSoap(xml);
  assert.ok(r.ok && 'body' in r, `expected a body: ${JSON.stringify(r)}`);
  return r.body;
}

describe('reading ONVIF SOAP answers', () => {
  it('reads device information, entities decoded and control characters made safe', () => {
    const info = readDeviceInformation(
      body(
        vendor(
          '<tds:GetDeviceInformationResponse><tds:Manufacturer>ACME &amp; Co</tds:Manufacturer>' +
            '<tds:Model>X1\u0007</tds:Model><tds:FirmwareVersion>V5.6.3 build 210720</tds:FirmwareVersion>' +
            '<tds:SerialNumber>DS-2CD2143G2</tds:SerialNumber><tds:HardwareId>88</tds:HardwareId>' +
            '</tds:GetDeviceInformationResponse>',
        ),
      ),
    );
    assert.deepEqual(info, {
      manufacturer: 'ACME & Co',
      model: 'X1?',
      firmwareVersion: 'V5.6.3 build 210720',
      serialNumber: 'DS-2CD2143G2',
      hardwareId: '88',
    });
  });

  it('takes the MAC address of the first enabled interface, normalised', () => {
    const mac = readMacAddress(
      body(
        vendor(
          '<tds:GetNetworkInterfacesResponse>' +
            '<tds:NetworkInterfaces token="wlan"><tt:Enabled>false</tt:Enabled><tt:Info><tt:HwAddress>11:11:11:11:11:11</tt:HwAddress></tt:Info></tds:NetworkInterfaces>' +
            '<tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled><tt:Info><tt:HwAddress>AC-CC-8E-0A-0B-0C</tt:HwAddress></tt:Info></tds:NetworkInterfaces>' +
            '</tds:GetNetworkInterfacesResponse>',
        ),
      ),
    );
    assert.equal(mac, 'ac:cc:8e:0a:0b:0c');
    assert.equal(
      readMacAddress(
        body(
          vendor(
            '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces><tt:Info><tt:HwAddress>not-a-mac</tt:HwAddress></tt:Info></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>',
          ),
        ),
      ),
      undefined,
    );
  });

  it('reads service addresses and a PullPoint address without their userinfo', () => {
    const urls = readServiceUrls(
      body(
        vendor(
          '<tds:GetCapabilitiesResponse><tds:Capabilities>' +
            '<tt:Media><tt:XAddr>http://root:pw@10.0.0.5/onvif/Media</tt:XAddr></tt:Media>' +
            '<tt:Events><tt:XAddr>ftp://10.0.0.5/x</tt:XAddr></tt:Events>' +
            '</tds:Capabilities></tds:GetCapabilitiesResponse>',
        ),
      ),
    );
    assert.equal(urls.media?.href, 'http://10.0.0.5/onvif/Media');
    assert.equal(urls.events, undefined);
    const sub = readSubscription(
      body(
        vendor(
          '<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>' +
            '<wsa5:Address>http://u:p@10.0.0.5/onvif/Events/PullSubManager_1</wsa5:Address>' +
            '</tev:SubscriptionReference></tev:CreatePullPointSubscriptionResponse>',
        ),
      ),
    );
    assert.equal(sub?.href, 'http://10.0.0.5/onvif/Events/PullSubManager_1');
  });

  it('reads profiles: tokens unique and non-empty, at most MAX_PROFILES', () => {
    const many = Array.from(
      { length: 40 },
      (_, i) => `<trt:Profiles token="p${i % 30}"><tt:Name>n${i}</tt:Name></trt:Profiles>`,
    ).join('');
    const profiles = readProfiles(
      body(
        vendor(
          `<trt:GetProfilesResponse><trt:Profiles><tt:Name>no token</tt:Name></trt:Profiles>${many}</trt:GetProfilesResponse>`,
        ),
      ),
    );
    assert.equal(profiles.length, MAX_PROFILES - 1); // the token-less one took a place and was dropped
    assert.deepEqual(profiles[0], { token: 'p0', name: 'n0' });
    assert.equal(new Set(profiles.map((p) => p.token)).size, profiles.length);
  });

  it('strips userinfo from media URIs and refuses other schemes', () => {
    const uri = (u: string, kind: 'GetStreamUriResponse' | 'GetSnapshotUriResponse') =>
      readMediaUri(
        body(
          vendor(`<trt:${kind}><trt:MediaUri><tt:Uri>${u}</tt:Uri></trt:MediaUri></trt:${kind}>`),
        ),
        kind,
      );
    assert.equal(
      uri('rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101', 'GetStreamUriResponse'),
      'rtsp://10.0.0.5:554/Streaming/Channels/101',
    );
    assert.equal(
      uri('http://10.0.0.5/snap.jpg?user=a&amp;x=1', 'GetSnapshotUriResponse'),
      'http://10.0.0.5/snap.jpg?user=a&x=1',
    );
    assert.equal(uri('javascript:alert(1)', 'GetStreamUriResponse'), undefined);
    assert.equal(uri('not a uri', 'GetStreamUriResponse'), undefined);
  });

  it('reads notifications with their topic and simple items', () => {
    const msg = (state: string) =>
      '<wsnt:NotificationMessage><wsnt:Topic Dialect="x">tns1:VideoSource/MotionAlarm</wsnt:Topic>' +
      '<wsnt:Message><tt:Message UtcTime="2026-12-03T12:00:00Z" PropertyOperation="Changed">' +
      '<tt:Source><tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source>' +
      `<tt:Data><tt:SimpleItem Name="State" Value="${state}"/><tt:SimpleItem Name="__proto__" Value="x"/></tt:Data>` +
      '</tt:Message></wsnt:Message></wsnt:NotificationMessage>';
    const ns = readNotifications(
      body(
        vendor(
          `<tev:PullMessagesResponse>${msg('true')}${msg('false')}</tev:PullMessagesResponse>`,
        ),
      ),
    );
    assert.deepEqual(ns, [
      {
        topic: 'tns1:VideoSource/MotionAlarm',
        source: { Source: 'VideoSource_1' },
        data: { State: 'true' },
        utcTime: '2026-12-03T12:00:00Z',
        propertyOperation: 'Changed',
      },
      {
        topic: 'tns1:VideoSource/MotionAlarm',
        source: { Source: 'VideoSource_1' },
        data: { State: 'false' },
        utcTime: '2026-12-03T12:00:00Z',
        propertyOperation: 'Changed',
      },
    ]);
    assert.deepEqual(readNotifications(body(vendor('<tev:PullMessagesResponse/>'))), []);
  });

  it('reads a NotAuthorized fault as codes and reason', () => {
    const r = parseSoap(
      vendor(
        '<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value>' +
          '<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:NotAuthorized</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code>' +
          '<SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">Sender not Authorized</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>',
      ),
    );
    assert.deepEqual(r, {
      ok: true,
      fault: { codes: ['Sender', 'NotAuthorized'], reason: 'Sender not Authorized' },
    });
  });
});

describe('hostile SOAP answers', () => {
  it('refuses a DTD (entity expansion) before parsing', () => {
    const lol = Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`,
    ).join('');
    const r = parseSoap(
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "lol">${lol}]>` +
        vendor(
          '<tds:GetDeviceInformationResponse><tds:Model>&l9;</tds:Model></tds:GetDeviceInformationResponse>',
        ).replace(/^<\?xml[^>]*>/, ''),
    );
    assert.deepEqual(r, { ok: false, reason: 'a DTD (not allowed in SOAP)' });
  });

  it('leaves undeclared entities as text instead of expanding or failing', () => {
    const info = readDeviceInformation(
      body(
        vendor(
          '<tds:GetDeviceInformationResponse><tds:Model>&xxe;</tds:Model></tds:GetDeviceInformationResponse>',
        ),
      ),
    );
    assert.equal(info.model, '&xxe;');
  });

  it('says why for bytes that are not a SOAP envelope, without throwing', () => {
    for (const junk of [
      '',
      'HTTP/1.1 200 OK',
      '<html><body>login</body></html>',
      '<a><b></a>',
      '\u0000\u00ff\u0001<<<>>>',
      '<s:Envelope xmlns:s="x"><s:Body>'.repeat(5000),
    ]) {
      const r = parseSoap(junk);
      assert.equal(r.ok, false, `accepted ${JSON.stringify(junk.slice(0, 40))}`);
    }
  });

  it('survives absurd nesting', () => {
    const deep = '<a>'.repeat(200_000) + '</a>'.repeat(200_000);
    const r = parseSoap(vendor(deep));
    assert.equal(typeof r.ok, 'boolean');
  });

  it('reads an answer with wrong shapes as empty values', () => {
    const b = body(
      vendor(
        '<tds:GetDeviceInformationResponse><tds:Manufacturer><x>1</x></tds:Manufacturer></tds:GetDeviceInformationResponse>' +
          '<trt:GetProfilesResponse>text</trt:GetProfilesResponse>',
      ),
    );
    assert.equal(readDeviceInformation(b).manufacturer, '');
    assert.deepEqual(readProfiles(b), []);
    assert.deepEqual(readNotifications(b), []);
    assert.equal(readMediaUri(b, 'GetStreamUriResponse'), undefined);
  });
});

describe('ONVIF authentication', () => {
  it('computes the UsernameToken PasswordDigest of the ONVIF programmer guide', () => {
    assert.equal(
      passwordDigest(
        Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64'),
        '2010-09-16T07:50:45Z',
        'userpassword',
      ),
      'tuOSpGlFlIXsozq4HFNeeGeFLEI=',
    );
  });

  it('never puts the password itself in the Security header', () => {
    const h = securityHeader({ username: 'a<b', password: 'pw-visible?' });
    assert.ok(!h.includes('pw-visible?'));
    assert.match(h, /<wsse:Username>a&lt;b<\/wsse:Username>/);
  });

  it('computes the digest response of RFC 2617 section 3.5', () => {
    const c = parseDigestChallenge(
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    );
    assert.deepEqual(c, {
      realm: 'testrealm@host.com',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      algorithm: 'MD5',
      qop: 'auth',
      opaque: '5ccc069c403ebaf9f0171e9517f40e41',
    });
    assert.equal(
      digestResponse(
        c,
        { username: 'Mufasa', password: 'Circle Of Life' },
        'GET',
        '/dir/index.html',
        '00000001',
        '0a4f113b',
      ),
      '6629fae49393a05397450978507c4ef1',
    );
  });

  it('prefers SHA-256 among several challenges and ignores other schemes', () => {
    const c = parseDigestChallenge(
      'Basic realm="x", Digest qop="auth", realm="IP Camera", nonce="n1", stale="FALSE", ' +
        'Digest qop="auth", realm="IP Camera", nonce="n2", algorithm="SHA-256", stale="FALSE"',
    );
    assert.equal(c?.nonce, 'n2');
    assert.equal(c?.algorithm, 'SHA-256');
    assert.equal(parseDigestChallenge('Basic realm="x"'), undefined);
    assert.equal(
      parseDigestChallenge('Digest realm="x", nonce="n", algorithm=MD5-sess'),
      undefined,
    );
    assert.equal(parseDigestChallenge(`Digest realm="${'a'.repeat(5000)}", nonce="n"`), undefined);
    assert.equal(parseDigestChallenge(',,,"=\\'), undefined);
  });
});

describe('ONVIF credentials', () => {
  const a = 'c0ffee00-0000-4000-8000-00000000000a';
  const b = 'c0ffee00-0000-4000-8000-00000000000b';

  it('gives a camera its own entry of ONVIF_CREDENTIALS, others ONVIF_USERNAME/PASSWORD', () => {
    const book = credentialsBook({
      ONVIF_USERNAME: 'all',
      ONVIF_PASSWORD: 'all-pw',
      ONVIF_CREDENTIALS: `urn:uuid:${a.toUpperCase()}:\n  username: one\n  password: one-pw\n`,
    });
    assert.deepEqual(book.forCamera(a), { username: 'one', password: 'one-pw' });
    assert.deepEqual(book.forCamera(`urn:uuid:${a}`), { username: 'one', password: 'one-pw' });
    assert.deepEqual(book.forCamera(b), { username: 'all', password: 'all-pw' });
    assert.deepEqual(book.problems, []);
    assert.equal(credentialsBook({}).forCamera(a), undefined);
  });

  it('names bad entries without quoting a password', () => {
    const book = credentialsBook({
      ONVIF_CREDENTIALS: JSON.stringify({
        'not-a-uuid': { username: 'u', password: 'hunter2-a' },
        [b]: { username: 'u', password: 7 },
        [a]: { username: 'u', password: 'ok' },
      }),
    });
    assert.deepEqual(book.forCamera(a), { username: 'u', password: 'ok' });
    assert.equal(book.problems.length, 2);
    const broken = credentialsBook({ ONVIF_CREDENTIALS: 'x: [unclosed hunter2-b' });
    assert.equal(broken.problems.length, 1);
    for (const p of [...book.problems, ...broken.problems]) assert.ok(!/hunter2/.test(p), p);
    assert.equal(credentialsBook({ ONVIF_CREDENTIALS: '- a\n- b\n' }).problems.length, 1);
  });
});

describe('ONVIF names', () => {
  it('makes profile tokens ENV_STYLE and text label values', () => {
    assert.equal(profileSuffix({ token: 'profile-2.sub', name: '' }), 'PROFILE_2_SUB');
    assert.equal(profileSuffix({ token: 'x'.repeat(300), name: '' }).length, 128 - 19);
    assert.equal(labelValue('Edge & Bridge Cams'), 'Edge---Bridge-Cams');
    assert.equal(labelValue('--Ünïcode--'), 'n-code');
    assert.equal(labelValue('a'.repeat(70) + '-'), 'a'.repeat(63));
    assert.equal(labelValue('***'), '');
  });
});

describe('ONVIF property values', () => {
  it('redact the password we sent, plain or percent-encoded, and leave short ones alone', () => {
    const c = { username: 'admin', password: 'p@ss word' };
    assert.equal(
      redact('http://cam/snap.jpg?usr=admin&pwd=p%40ss%20word', c),
      'http://cam/snap.jpg?usr=admin&pwd=REDACTED',
    );
    assert.equal(redact('x p@ss word y', c), 'x REDACTED y');
    assert.equal(redact('rtsp://cam/1', { username: 'a', password: '1' }), 'rtsp://cam/1');
    assert.equal(redact('rtsp://cam/1', undefined), 'rtsp://cam/1');
  });
});
