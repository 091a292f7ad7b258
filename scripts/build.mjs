#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm ci` in a clone and `npm pack` build too): compiles the sources
// with tsc into dist/ (JavaScript, .d.ts, source maps), then copies what the compiled modules read beside
// themselves that tsc does not emit (the Python bridge script). A failed compile fails the build.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
// Files the compiled code opens by path (new URL('./…', import.meta.url)), not by import.
for (const rel of ['plugins/predictor-python/bridge']) cpSync(join(root, rel), join(dist, rel), { recursive: true });
chmodSync(join(dist, 'serving/cli/bin.js'), 0o755);
