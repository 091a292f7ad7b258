/**
 * The npm package as a user gets it (issue 12): `npm pack` (which runs `prepare`, so the tarball holds a
 * fresh `dist/`), installed into an empty project from the tarball; there `npx myelin` runs the compiled
 * CLI, a typed predictor importing `HttpError` and `type Predictor` from 'myelin' type-checks under
 * `moduleResolution: nodenext` with `skipLibCheck: false`, and `myelin serve` answers with it (its
 * HttpError reaching the client as a 400). Needs the npm registry for the package's dependencies.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { httpCall, postJson } from '../harness/http-client.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };
let work: string;
let project: string;
let tarball: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'myelin-pack-'));
  const packed = await run('npm', ['pack', '--pack-destination', work, '--json'], { cwd: repo, env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info.filename);
  project = join(work, 'user-project');
  await run('mkdir', ['-p', project]);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, type: 'module' }));
  const typescript = (JSON.parse(await readFile(join(repo, 'node_modules/typescript/package.json'), 'utf8')) as { version: string }).version;
  const typesNode = (JSON.parse(await readFile(join(repo, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `typescript@${typescript}`, `@types/node@${typesNode}`], { cwd: project, env, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the tarball ships compiled JavaScript, declarations and maps, not the TypeScript sources', async () => {
  const listed = await run('tar', ['-tzf', tarball], { maxBuffer: 64 * 1024 * 1024 });
  const files = listed.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/core/index.js', 'dist/core/index.d.ts', 'dist/core/index.js.map', 'dist/serving/client/myelin-client.js', 'dist/serving/cli/bin.js', 'dist/serving/replica/replica-entry.js', 'dist/serving/replica/predictor-worker-entry.js', 'dist/plugins/predictor-python/bridge/myelin_bridge.py', 'Dockerfile', 'package.json']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  assert.deepEqual(sources, [], 'no .ts sources in the package');
  const pkg = JSON.parse(await readFile(join(project, 'node_modules/myelin/package.json'), 'utf8')) as { bin: Record<string, string>; exports: Record<string, unknown>; types: string };
  assert.equal(pkg.bin.myelin, 'dist/serving/cli/bin.js');
  assert.equal(pkg.types, './dist/index.d.ts');
});

test('npx myelin runs the compiled CLI of the installed package', async () => {
  const version = (JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
  const r = await run('npx', ['--no-install', 'myelin', '--version'], { cwd: project, env, timeout: 60_000 });
  assert.equal(r.stdout.trim(), version);
  // The bin npm linked is the compiled entry (no tsx registration on the CLI's path).
  const bins = await readdir(join(project, 'node_modules/.bin'));
  assert.ok(bins.includes('myelin'));
  const binText = await readFile(join(project, 'node_modules/myelin/dist/serving/cli/bin.js'), 'utf8');
  assert.ok(binText.startsWith('#!/usr/bin/env node'));
  assert.doesNotMatch(binText, /tsx/);
});

test('a typed predictor and a client program importing from myelin type-check (nodenext, skipLibCheck false); the predictor serves', async () => {
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['predictor.ts', 'client.ts'] }),
  );
  await writeFile(
    join(project, 'predictor.ts'),
    [
      "import { HttpError, type Predictor } from 'myelin';",
      '',
      'export default class EchoPredictor implements Predictor {',
      '  predict({ payload }: { payload: unknown }): unknown {',
      "    if (typeof payload !== 'object' || payload === null || !('x' in payload)) throw new HttpError(400, 'x is required');",
      '    return { doubled: 2 * Number((payload as { x: unknown }).x) };',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  // A program driving the daemon types against the same entry (issue 16's client).
  await writeFile(
    join(project, 'client.ts'),
    [
      "import { MyelinClient, UnauthorizedError, type EngineEvent } from 'myelin';",
      '',
      "const client = new MyelinClient({ url: 'http://127.0.0.1:8889' });",
      "export const sub = client.events$({ api: 'echo' }).subscribe((e: EngineEvent) => console.log(e.type));",
      'export const isAuth = (e: unknown): boolean => e instanceof UnauthorizedError;',
      '',
    ].join('\n'),
  );
  const tsc = await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: project, env, timeout: 120_000 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  assert.deepEqual(tsc, { code: 0, out: '' });
  // A wrong use is still caught: the declarations carry real types, not `any`.
  await writeFile(join(project, 'bad.ts'), "import { HttpError } from 'myelin';\nnew HttpError('not a status', 1, 2, 3);\n");
  const strict = await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', 'false', '--types', 'node', 'bad.ts'], { cwd: project, env }).then(
    () => 0,
    (e: { code: number; stdout: string }) => (assert.match(e.stdout, /bad\.ts\(2,/), e.code),
  );
  assert.notEqual(strict, 0, 'a wrong HttpError call fails to type-check');

  await writeFile(join(project, 'myelin.yaml'), '- name: echo\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n');
  const proc = spawn(join(project, 'node_modules/.bin/myelin'), ['serve', '--port', '0'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const deadline = Date.now() + 60_000;
    while (!/echo ready/.test(out)) {
      assert.ok(Date.now() < deadline && proc.exitCode === null, `serve did not become ready:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const ok = await postJson({ port }, { x: 21 });
    assert.deepEqual([ok.status, ok.json()], [200, { doubled: 42 }]);
    const refused = await postJson({ port }, { y: 1 });
    assert.deepEqual([refused.status, refused.json()], [400, { error: 'x is required' }]);
    const summary = (await httpCall({ port }, { path: '/' })).json() as { model_metadata: { class: string } };
    assert.equal(summary.model_metadata.class, 'EchoPredictor');
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  }
});
