import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineRing, LineSplitter } from '../../../../adapters/orchestrators/local/line-ring.js';

test('LineRing keeps the last lines, oldest first, and tails', () => {
  const r = new LineRing(3);
  for (const l of ['a', 'b', 'c', 'd']) r.push(l);
  assert.deepEqual(r.lines(), ['b', 'c', 'd']);
  assert.deepEqual(r.lines(2), ['c', 'd']);
  assert.deepEqual(r.lines(0), []);
  assert.deepEqual(r.lines(10), ['b', 'c', 'd']);
  assert.throws(() => new LineRing(0), RangeError);
});

const splits: readonly { name: string; chunks: readonly string[]; max?: number; want: readonly string[] }[] = [
  { name: 'lines across chunks', chunks: ['hel', 'lo\nwor', 'ld\n'], want: ['hello', 'world'] },
  { name: 'CRLF endings', chunks: ['a\r\nb\r\n'], want: ['a', 'b'] },
  { name: 'unterminated last line is flushed at end', chunks: ['x\ny'], want: ['x', 'y'] },
  { name: 'empty lines are kept', chunks: ['a\n\nb\n'], want: ['a', '', 'b'] },
  { name: 'long line without newline is cut', chunks: ['abcdefgh', 'ij'], max: 4, want: ['abcd', 'efgh', 'ij'] },
  { name: 'long terminated line is cut', chunks: ['abcdef\n'], max: 4, want: ['abcd', 'ef'] },
];
for (const c of splits) {
  test(`LineSplitter: ${c.name}`, () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => got.push(l), c.max);
    for (const ch of c.chunks) s.write(ch);
    s.end();
    assert.deepEqual(got, c.want);
  });
}
