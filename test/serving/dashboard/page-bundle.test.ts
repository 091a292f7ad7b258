import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildPage, PAGE_SOURCES } from '../../../serving/dashboard/page-assets.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the page sources type-check (JSDoc types, DOM library) with their own tsconfig', async () => {
  // The project's tsconfig has no DOM library, so the page is plain JavaScript checked here.
  const r = await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(PAGE_SOURCES, 'tsconfig.json')], { cwd: root }).then(
    (x) => ({ code: 0, out: x.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
  assert.equal(r.code, 0, r.out);
});

test('the bundle is one app.js and one app.css with uPlot inside and nothing loaded from elsewhere', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-page-'));
  try {
    const built = await buildPage(dir);
    const js = await readFile(join(dir, 'app.js'), 'utf8');
    const css = await readFile(join(dir, 'app.css'), 'utf8');
    assert.equal(js, built.js.toString('utf8'));
    assert.match(built.hash, /^[0-9a-f]{12}$/);
    assert.match(js, /uplot/, 'uPlot is bundled');
    assert.match(css, /\.uplot/, "uPlot's stylesheet is bundled");
    for (const [name, text] of [['app.js', js], ['app.css', css]]) {
      assert.deepEqual(text.match(/https?:\/\/[^\s"'`)]+/g) ?? [], [], `${name} names no URL to fetch`);
      assert.ok(!/@import/.test(text), `${name} imports nothing at run time`);
    }
    // Measured in docs/dashboard.md: kept small (uPlot is about 50 KB of it).
    assert.ok(built.js.length < 150_000, `app.js is ${built.js.length} bytes`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
