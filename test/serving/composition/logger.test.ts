// The root logger: pino JSON on stderr by default, readable lines with format 'pretty' (what
// `myelin up` uses on a terminal or with --log-format pretty); checked in real child processes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const LOGGER = new URL('../../../serving/composition/logger.ts', import.meta.url).href;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function stderrOf(format: 'json' | 'pretty'): string {
  const code = `const { createRootLogger } = await import(${JSON.stringify(LOGGER)});
const log = createRootLogger({ format: ${JSON.stringify(format)} });
log.info({ api: 'iris' }, 'replica ready');
await new Promise((r) => setTimeout(r, 100));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

test('json: one pino JSON line', () => {
  const line = JSON.parse(stderrOf('json').trim()) as Record<string, unknown>;
  assert.deepEqual([line.level, line.msg, line.api], [30, 'replica ready', 'iris']);
});

test('pretty: a readable line with the level, message and fields, not JSON', () => {
  const text = stderrOf('pretty').trim();
  assert.throws(() => JSON.parse(text));
  assert.match(text, /INFO.*replica ready/);
  assert.match(text, /"api":"iris"/);
});
