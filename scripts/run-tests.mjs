#!/usr/bin/env node
// The test command: type-check, then node's test runner on an explicit list of test files.
// Node 20's runner expands no globs, so the list is built here, printed, and must not be empty.
// Usage: npm test [-- <substring> ...]   (only files whose path contains one of the substrings)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
// onnxruntime: no telemetry database under ~/.cache, no /tmp/mat-debug-<pid>.log (docs/predictors.md).
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// The Python bridge's tests need numpy and scikit-learn: Debian's interpreter sees the python3-* packages
// (.ci/run installs them), where another python3 first on PATH (pyenv) may not.
if (!process.env.MYELIN_PYTHON && existsSync('/usr/bin/python3')) process.env.MYELIN_PYTHON = '/usr/bin/python3';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files found under test/${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}

// The system packages the suite needs (nats-server, Debian's python3 with numpy and scikit-learn…):
// stop at once, naming the one command that installs them, rather than fail test by test.
let deps = spawnSync('bash', [join(root, 'scripts/system-deps.sh'), '--check'], { cwd: root, encoding: 'utf8' });
// On a fresh machine where this may install them (root with apt-get), it does, then checks again.
const canInstall = typeof process.getuid === 'function' && process.getuid() === 0 && spawnSync('bash', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
if (deps.status !== 0 && canInstall && process.env.MYELIN_NO_INSTALL !== '1') {
  process.stderr.write(`${deps.stderr}installing them (bash scripts/system-deps.sh; MYELIN_NO_INSTALL=1 skips this)\n`);
  const install = spawnSync('bash', [join(root, 'scripts/system-deps.sh')], { cwd: root, stdio: 'inherit' });
  if (install.status === 0) deps = spawnSync('bash', [join(root, 'scripts/system-deps.sh'), '--check'], { cwd: root, encoding: 'utf8' });
}
if (deps.status !== 0) {
  process.stderr.write(deps.stderr || deps.error?.message || 'system packages are missing\n');
  console.error('install them with:  sudo bash scripts/system-deps.sh   (then run npm test again)');
  process.exit(1);
}

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  console.error('type-check failed');
  process.exit(tsc.status ?? 1);
}
console.log(`type-check passed; running ${files.length} test files:\n  ${files.join('\n  ')}`);

// Two test files at a time (Node 20 runs one on a 2-core machine): most of the suite waits on child
// processes and sockets, not on the CPU. MYELIN_TEST_CONCURRENCY=1 runs them one by one.
const concurrency = process.env.MYELIN_TEST_CONCURRENCY || '2';
const args = ['--import', 'tsx', '--test', '--test-timeout=180000', `--test-concurrency=${concurrency}`, ...files];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
