import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { LineSplitter, parseLine, ProgressTracker, recommended } from '../progress';

test('the CLI progress lines parse, anything else is ignored', () => {
  assert.deepEqual(parseLine('{"event":"progress","file":"m.gguf","done":5,"total":10}'), { event: 'progress', file: 'm.gguf', done: 5, total: 10 });
  assert.equal(parseLine('pulling m into /x'), undefined);
  assert.equal(parseLine('{"event":"other"}'), undefined);
  assert.equal(parseLine('[1,2]'), undefined);
});

test('absolute byte counts become increments that add up to 100 per file', () => {
  const t = new ProgressTracker();
  let sum = 0;
  for (const e of [
    { event: 'start', file: 'm', total: 1000, from: 250 },
    { event: 'progress', file: 'm', done: 500, total: 1000 },
    { event: 'progress', file: 'm', done: 1000, total: 1000 },
  ] as const) {
    sum += t.update(e)!.increment;
  }
  assert.equal(sum, 100);
  assert.equal(t.update({ event: 'start', file: 'm', total: 1000, from: 250 })!.message, 'm: 0 MB of 0 MB');
  assert.equal(t.update({ event: 'done', file: 'm', path: '/p', cached: false })!.increment, 0);
  assert.equal(t.update({ event: 'start', file: 'n', total: 2e9, from: 1e9 })!.increment, 50, 'a second file starts its own bar');
  assert.equal(t.update({ event: 'progress', file: 'n', done: 5e6, total: null })!.increment, 0, 'unknown size');
  assert.equal(t.update({ event: 'pulled', path: '/p', id: 'x' }), undefined);
});

test('the recommendation and whole lines', () => {
  assert.equal(recommended('{"recommended":"qwen2.5-coder-1.5b-q4_k_m","models":[]}'), 'qwen2.5-coder-1.5b-q4_k_m');
  assert.equal(recommended('{"recommended":null}'), undefined);
  assert.equal(recommended('not json'), undefined);
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"a":1}\n{"b"'), ['{"a":1}']);
  assert.deepEqual(s.push(':2}\n\n'), ['{"b":2}']);
});
