import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { simulate } from '../../../serving/cli/commands/simulate.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('docs/autoscaling.md: every line of the worked simulate example is what the command prints, in order', async () => {
  const doc = await readFile(`${root}docs/autoscaling.md`, 'utf8');
  const block = /```\n\$ myelin simulate (.+)\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'the worked example block is in the doc');
  const args = block[1].split(/\s+/);
  const arg = (name: string) => args[args.indexOf(name) + 1];
  const shown = block[2].split('\n').filter((l) => l !== '' && l !== '…');
  const chunks: string[] = [];
  await simulate({
    config: arg('--config'),
    api: arg('--api'),
    trace: arg('--trace'),
    output: 'table',
    cwd: root,
    stdout: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }),
  });
  const printed = chunks.join('').split('\n');
  let at = 0;
  for (const line of shown) {
    const i = printed.indexOf(line, at);
    assert.ok(i >= 0, `the doc shows a line the command does not print (after line ${at}):\n${line}`);
    at = i + 1;
  }
  assert.ok(shown.length >= 15);
});
