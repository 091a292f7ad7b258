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
import { startDaemonProcess } from '../harness/daemon-process.js';
import { httpCall, postJson } from '../harness/http-client.js';
import { NatsServer, natsServerAvailable } from '../harness/nats-server.js';

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
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/core/index.js', 'dist/core/index.d.ts', 'dist/core/index.js.map', 'dist/serving/client/myelin-client.js', 'dist/serving/cli/bin.js', 'dist/serving/replica/replica-entry.js', 'dist/serving/replica/predictor-worker-entry.js', 'dist/plugins/predictor-python/bridge/myelin_bridge.py', 'dist/serving/dashboard/page/app.js', 'dist/serving/dashboard/page/app.css', 'Dockerfile', 'package.json']) {
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

// Issue 16's check: a TypeScript program written against the installed package deploys, predicts,
// follows events through a load step, and reads the same decision again from NATS (JetStream replay).
const PROGRAM = `import { MyelinClient, natsEvents$, type EngineEvent, type ScalingDecidedEvent } from 'myelin';

const [url, nats, stateDir, folder] = process.argv.slice(2);
const client = new MyelinClient({ url, stateDir });
const t0 = Date.now();
const seen: EngineEvent[] = [];
const sub = client.events$({ api: 'scaler', since: t0 }).subscribe({ next: (e) => seen.push(e), error: (e) => { console.error(e); process.exit(3); } });
const until = async (what: string, ms: number, check: () => boolean): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
};
const deployed = await client.deploy(folder, { wait: true });
const first = await client.predict<{ doubled: number }>('scaler', { x: 21 });
let stop = false;
let failed = 0;
const loops = Array.from({ length: 6 }, async () => {
  while (!stop) if ((await client.predict('scaler', { x: 1, delay_ms: 150 })).status !== 200) failed++;
});
const isUp = (e: EngineEvent): e is ScalingDecidedEvent => e.type === 'scaling.decided' && e.to > e.from;
try {
  await until('a scale-up decision', 60_000, () => seen.some(isUp));
} finally {
  stop = true;
  await Promise.all(loops);
}
const decision = seen.find(isUp)!;
const fromNats: EngineEvent[] = [];
const nsub = natsEvents$({ servers: nats, api: 'scaler', since: t0 }).subscribe((e) => fromNats.push(e));
await until('the decision from NATS', 20_000, () => fromNats.some((e) => JSON.stringify(e) === JSON.stringify(decision)));
nsub.unsubscribe();
sub.unsubscribe();
console.log(JSON.stringify({ action: deployed.results[0].action, live: deployed.apis?.[0].status, first: first.body, failed, decision, replayed: fromNats.length }));
process.exit(0);
`;

const SCALER = `export class Predictor {
  async predict({ payload }: { payload: { x: number; delay_ms?: number } }) {
    await new Promise((r) => setTimeout(r, payload.delay_ms ?? 0));
    return { doubled: 2 * payload.x };
  }
}
`;

test('a program against the installed package deploys, predicts, follows a load step and reads the decision again from NATS', { skip: natsServerAvailable() ? false : 'nats-server is not installed (sudo bash scripts/system-deps.sh)', timeout: 240_000 }, async () => {
  const folder = join(work, 'scaler');
  await run('mkdir', ['-p', folder]);
  await writeFile(join(folder, 'predictor.ts'), SCALER);
  await writeFile(
    join(folder, 'myelin.yaml'),
    [
      '- name: scaler',
      '  kind: RealtimeAPI',
      '  predictor:',
      '    type: typescript',
      '    path: predictor.ts',
      '  compute:',
      '    cpu: 100m',
      '  autoscaling:',
      '    max_replicas: 3',
      '    target_replica_concurrency: 1',
      '    tick: 1s',
      '    window: 2s',
      '    upscale_stabilization_period: 0s',
      '',
    ].join('\n'),
  );
  await writeFile(join(project, 'program.ts'), PROGRAM);
  const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['program.ts'] };
  await writeFile(join(project, 'tsconfig.program.json'), JSON.stringify(tsconfig));
  const tsc = await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.program.json'], { cwd: project, env, timeout: 120_000 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  assert.deepEqual(tsc, { code: 0, out: '' });

  const nats = await NatsServer.start({ jetstream: true });
  const stateDir = join(work, 'state');
  const daemon = await startDaemonProcess({
    bin: join(project, 'node_modules/myelin/dist/serving/cli/bin.js'),
    stateDir,
    logFile: join(work, 'daemon.log'),
    outFile: join(work, 'daemon.out'),
    args: ['--nats', nats.url],
  });
  try {
    // tsx is the installed package's own dependency (it loads users' .ts predictors).
    const r = await run(process.execPath, ['--import', 'tsx', 'program.ts', daemon.controlUrl, nats.url, stateDir, folder], { cwd: project, env, timeout: 180_000 }).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`the program failed:\n${e.stdout}\n${e.stderr}`);
    });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { action: string; live: string; first: unknown; failed: number; decision: { to: number; from: number; reason: string }; replayed: number };
    assert.equal(out.action, 'created');
    assert.equal(out.live, 'live');
    assert.deepEqual(out.first, { doubled: 42 });
    assert.equal(out.failed, 0);
    assert.ok(out.decision.to > out.decision.from && out.decision.reason.length > 0, JSON.stringify(out.decision));
    assert.ok(out.replayed > 0);
  } finally {
    await daemon.stop(60_000);
    await nats.stop();
  }
});
