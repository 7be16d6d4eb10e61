// Attacks on the parsers' error messages: text that is not YAML or JSON, with a
// secret on the offending line, must give an error that says where (file, line,
// column) and never what. Both parsers' own messages quote the line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBrokerConfig } from '../../src/dataplane/broker-config.ts';
import { loadUplinkConfig } from '../../src/uplink/config.ts';
import { parseConfig } from '../../src/registry/embedded/config-file.ts';
import { readKubeConfigFile } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { parseJsonOrYaml, parseJson, ParseError } from '../../src/util/yaml.ts';

const secret = (): string => `s3cr3t-${randomBytes(8).toString('hex')}`;

/** Broken texts, each with the secret on the line of the mistake, and that line. */
function brokenTexts(s: string): { name: string; text: string; line: number }[] {
  return [
    { name: 'compact mapping', text: `a: 1\npassword: ${s}\n b: [x\n`, line: 2 },
    { name: 'unclosed flow', text: `a: 1\ntoken: [${s}\n`, line: 2 },
    { name: 'duplicate key', text: `password: 1\npassword: ${s}\n`, line: 2 },
    { name: 'undefined alias', text: `password: *${s}\n`, line: 0 },
    { name: 'tab indent', text: `a:\n\tpassword: ${s}\n`, line: 2 },
    { name: 'JSON-looking', text: `{"password": "${s}"}}`, line: 1 },
    { name: 'JSON-looking, bad escape', text: `{"password": "${s}\\q"`, line: 1 },
    { name: 'bad tag', text: `password: !!int ${s}\nb: [\n`, line: 0 },
  ];
}

function assertClean(err: unknown, s: string, what: string): void {
  assert.ok(err instanceof Error, `${what}: expected an error`);
  const all = `${err.message} ${JSON.stringify(err)} ${String((err as { cause?: unknown }).cause)}`;
  assert.ok(
    !all.includes(s),
    `${what}: the error quotes the secret: ${err.message.replace(s, '<SECRET>')}`,
  );
}

describe('parse errors never quote the text', () => {
  it('parseJsonOrYaml: ParseError with line and column, without content, and no warnings printed', () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      for (const { name, text, line } of brokenTexts(secret())) {
        const s = /s3cr3t-[0-9a-f]+/.exec(text)?.[0] ?? '';
        let caught: unknown;
        try {
          parseJsonOrYaml(text, { file: 'devices.yaml', maxAliasCount: 100 });
        } catch (err) {
          caught = err;
        }
        assert.ok(
          caught instanceof ParseError,
          `${name}: expected a ParseError, got ${String(caught)}`,
        );
        assert.equal(caught.code, 'EDGEBRIDGE_PARSE');
        assert.match(caught.message, /^devices\.yaml: not valid YAML/);
        if (line > 0) {
          // Where the parser noticed: on the line of the mistake or the one after.
          const at = caught.line ?? 0;
          assert.ok(at === line || at === line + 1, `${name}: ${caught.message}`);
          assert.match(caught.message, new RegExp(`at line ${at}, column \\d+`));
        }
        assertClean(caught, s, name);
      }
      // A tag that does not resolve is a warning, which the yaml package would print.
      parseJsonOrYaml(`password: !!int ${secret()}\n`);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });

  it('parseJson: position from the message, never the snippet Node quotes', () => {
    for (const text of [
      's3cr3t-aaaa',
      '{"a": s3cr3t-aaaa}',
      '[1,\n2, s3cr3t-aaaa',
      '{"a":1}s3cr3t-aaaa',
    ]) {
      assert.throws(
        () => parseJson(text, 'state.json'),
        (err: unknown) => {
          assert.ok(err instanceof ParseError);
          assert.match(err.message, /^state\.json: not valid JSON/);
          assertClean(err, 's3cr3t-aaaa', text);
          return true;
        },
      );
    }
    assert.throws(() => parseJson('{"a":1}\n  s3cr3t', 'f'), /at line 2, column 3/);
  });

  it('every configuration loader: uplink, node broker, standalone config, kubeconfig', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parse-errors-'));
    let n = 0;
    for (const { name, text } of brokenTexts(secret())) {
      const s = /s3cr3t-[0-9a-f]+/.exec(text)?.[0] ?? '';
      const file = path.join(dir, `f${n++}.yaml`);
      writeFileSync(file, text);
      const attempts: [string, () => unknown][] = [
        ['uplink config', () => loadUplinkConfig(file, dir)],
        ['broker config', () => loadBrokerConfig(file)],
        ['standalone config', () => parseConfig(text, file)],
        ['kubeconfig', () => readKubeConfigFile(file)],
      ];
      for (const [what, attempt] of attempts) {
        let caught: unknown;
        try {
          await attempt();
        } catch (err) {
          caught = err;
        }
        // Not every text is broken for every loader (a tag is fine YAML for some), but none quotes it.
        if (caught === undefined) continue;
        assertClean(caught, s, `${what}, ${name}`);
        if (!(caught as Error).message.includes('not valid YAML')) continue;
        assert.ok(
          (caught as Error).message.includes(file),
          `${what}, ${name}: names the file: ${(caught as Error).message}`,
        );
      }
    }
  });
});
