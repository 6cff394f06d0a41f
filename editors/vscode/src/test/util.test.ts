import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { argsFor, statusText } from '../util';

const editor = { uri: 'file:///w/a.rs', range: { start: { line: 1, character: 0 }, end: { line: 2, character: 0 } } };

test('palette commands get the active document', () => {
  assert.deepEqual(argsFor('lokal.implementFromDesignDoc', [], editor), [{ uri: 'file:///w/a.rs' }]);
  assert.deepEqual(argsFor('lokal.cloudDesign', [], editor), [{ uri: 'file:///w/a.rs', range: editor.range }]);
  assert.deepEqual(argsFor('lokal.cloudDesign', [{ uri: 'x' }], editor), [{ uri: 'x' }], 'explicit arguments win');
  assert.equal(argsFor('lokal.implementFromDesignDoc', [], {}), undefined, 'no editor, no command');
});

test('rewrite needs an instruction', () => {
  assert.equal(argsFor('lokal.rewrite', [], editor), undefined);
  assert.deepEqual(argsFor('lokal.rewrite', [], editor, 'shorter'), [{ uri: 'file:///w/a.rs', range: editor.range, instruction: 'shorter' }]);
});

test('status bar shows the strictest tier', () => {
  assert.equal(statusText({ folders: [{ uri: 'a', tier: 1, source: 'file' }, { uri: 'b', tier: 3, source: 'default' }], model: { state: 'ready', name: 'Gemma' } }), 'lokal T3 · Gemma');
  assert.equal(statusText({ folders: [], model: { state: 'loading' } }), 'lokal T3 · loading');
  assert.equal(statusText(undefined), 'lokal: starting');
});
