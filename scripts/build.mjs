#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm ci` in a clone and `npm pack` build too): compiles the sources
// with tsc into dist/ (JavaScript, .d.ts, source maps), then copies what the compiled modules read beside
// themselves that tsc does not emit (the Python bridge script). A failed compile fails the build.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
// inversify 8 is ~250 ES modules; Node's loader takes ~190 ms to load them one by one, the largest part
// of a replica's start. One esbuild bundle of it loads in ~15 ms (benchmarks/replica-start.bench.ts,
// docs/packaging.md), so the compiled code imports dist/vendor/inversify.js instead. The package still
// depends on inversify, for its types and for plugin packages.
const vendor = join(dist, 'vendor', 'inversify.js');
const esbuild = await import('esbuild');
await esbuild.build({
  stdin: { contents: "export * from 'inversify';", resolveDir: root, sourcefile: 'vendor-inversify.js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile: vendor,
  logLevel: 'warning',
});
for (const file of jsFiles(dist)) {
  if (file === vendor) continue;
  const text = readFileSync(file, 'utf8');
  if (!text.includes("from 'inversify'")) continue;
  let rel = relative(dirname(file), vendor).split(sep).join('/');
  if (!rel.startsWith('.')) rel = `./${rel}`;
  writeFileSync(file, text.replaceAll("from 'inversify'", `from '${rel}'`));
}
// Files the compiled code opens by path (new URL('./…', import.meta.url)), not by import.
for (const rel of ['plugins/predictor-python/bridge']) cpSync(join(root, rel), join(dist, rel), { recursive: true });
chmodSync(join(dist, 'serving/cli/bin.js'), 0o755);
// The dashboard page (serving/dashboard/page/: its modules, uPlot, their CSS) as one app.js + app.css
// beside the compiled handler, which serves them at GET /dashboard/app.js|css (docs/dashboard.md).
const { buildPage } = await import(pathToFileURL(join(dist, 'serving/dashboard/page-assets.js')).href);
const page = await buildPage(join(dist, 'serving/dashboard/page'));
console.log(`dashboard bundle: app.js ${page.js.length} bytes (${gzipSync(page.js).length} gzipped), app.css ${page.css.length} bytes (${gzipSync(page.css).length} gzipped)`);

/** Every `.js` file under `dir`. */
function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}
