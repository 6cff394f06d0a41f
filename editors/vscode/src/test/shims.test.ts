import { test } from 'node:test';
import * as assert from 'node:assert/strict';

// The shims bundled in place of minimatch and semver (see shims/): what vscode-languageclient relies on.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Minimatch } = require('../../shims/minimatch.js') as { Minimatch: new (p: string, o?: object) => { makeRe(): RegExp | false; match(p: string): boolean } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const satisfies = require('../../shims/semver/functions/satisfies.js') as (v: unknown, r: string) => boolean;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parse = require('../../shims/semver/functions/parse.js') as (v: string) => { prerelease: string[] } | null;

test('glob matchers as the language client builds them', () => {
  const m = new Minimatch('/w/**/*.{rs,toml}', { noext: true });
  assert.ok(m.makeRe());
  assert.ok(m.match('/w/src/a/main.rs') && m.match('/w/Cargo.toml'));
  assert.ok(!m.match('/w/src/main.py') && !m.match('/x/main.rs'));
  assert.ok(new Minimatch('**/.lokal.toml', { dot: true }).match('/w/.lokal.toml'));
  assert.ok(!new Minimatch('**/*.rs').match('/w/.hidden/a.rs'), 'dot files only with dot');
  assert.ok(new Minimatch('**/*.RS', { nocase: true, dot: true }).match('/w/a.rs'));
  assert.ok(new Minimatch('/w/src/**').match('/w/src/a/b.rs') && !new Minimatch('/w/src/*').match('/w/src/a/b.rs'));
  assert.ok(new Minimatch('/w/file?.[a-c]s', {}).match('/w/file1.bs') && !new Minimatch('/w/file?.[!a-c]s', {}).match('/w/file1.bs'));
  assert.ok(new Minimatch('/w/a+b(1).ts').match('/w/a+b(1).ts') && !new Minimatch('/w/a.ts').match('/w/axts'), 'regex characters are literal');
  assert.equal(new Minimatch('/w/{a,b').makeRe(), false, 'an unclosed brace is an invalid pattern');
});

test('the VS Code version check', () => {
  assert.ok(satisfies(parse('1.100.3'), '^1.91.0'));
  assert.ok(satisfies('1.91.0', '^1.91.0'));
  assert.ok(!satisfies('1.90.9', '^1.91.0'));
  assert.ok(!satisfies('2.0.0', '^1.91.0'));
  assert.equal(parse('not a version'), null);
  const insider = parse('1.101.0-insider')!;
  assert.deepEqual(insider.prerelease, ['insider']);
  insider.prerelease = [];
  assert.ok(satisfies(insider, '^1.91.0'), 'the client clears the insider tag before checking');
});
