/**
 * Errors the daemon turns into config problems or restore reasons, through the real loader and the
 * control API: a port or endpoint the gateway cannot take is a 400 `ENG_CONFIG_INVALID` at the field's
 * line (the API's entry when the field is not written), at deploy and at restore; a stored API its
 * file no longer defines is `ENG_API_NOT_IN_CONFIG`, listed with its reason. Orchestrator, transports
 * and autoscalers are fakes; the gateway fake refuses routes on demand. Time is a ManualClock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject, of, Subject, type Observable } from 'rxjs';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { ManualClock } from '../../../core/clock.js';
import { EngineError, type ConfigProblem } from '../../../core/errors.js';
import type { MetricsTransport } from '../../../core/ports/metrics-transport.js';
import type { EventBus } from '../../../core/ports/event-bus.js';
import type { ApiDeployment, ApiReplicaStatus, OrchestratorTarget, ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import type { ApiAutoscaler } from '../../../serving/daemon/api-autoscaler.js';
import { ControlApi } from '../../../serving/daemon/control-api.js';
import { Daemon, type SpecLoader } from '../../../serving/daemon/daemon.js';
import type { ProjectBundle } from '../../../serving/daemon/project-bundle.js';
import { StateStore } from '../../../serving/daemon/state-store.js';

const stats = () => ({ published: 0, received: 0, invalid: 0, dropped: 0 });

class FakeOrchestrator implements OrchestratorTarget {
  readonly kind = 'fake';
  readonly applied: ApiDeployment[] = [];
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async apply(d: ApiDeployment): Promise<void> {
    this.applied.push(d);
  }
  async scale(): Promise<void> {}
  async remove(): Promise<void> {}
  status(): ApiReplicaStatus | undefined {
    return undefined;
  }
  replicas$(): Observable<readonly ReplicaInfo[]> {
    return new BehaviorSubject<readonly ReplicaInfo[]>([]).asObservable();
  }
  logs$(): Observable<string> {
    return of();
  }
}

const fakeAutoscaler = (replicas: number): ApiAutoscaler => ({
  ticks$: new Subject<never>().asObservable(),
  setReplicas: () => {},
  reconfigure: () => {},
  state: () => ({ replicas }),
  close: () => {},
});

/** Gateway codes to refuse routes with, by API name (as the real gateway's `upsertApi` throws them). */
type Refusals = Map<string, 'ENG_GATEWAY_LISTEN' | 'ENG_GATEWAY_ENDPOINT_TAKEN'>;

interface Running {
  readonly daemon: Daemon;
  readonly control: ControlApi;
  readonly base: string;
  /** The daemon's log lines, parsed. */
  readonly logs: Array<Record<string, unknown>>;
}

let dir: string;
const running: Running[] = [];

async function startDaemon(refusals: Refusals, loadSpecs?: SpecLoader): Promise<Running> {
  const logs: Array<Record<string, unknown>> = [];
  const capture = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: 'info' }, capture);
  const metrics: MetricsTransport = { kind: 'fake', start: async () => {}, close: async () => {}, publish: () => {}, samples$: () => of(), stats };
  const events: EventBus = { kind: 'fake', start: async () => {}, close: async () => {}, publish: () => {}, events$: () => of(), stats };
  const daemon = new Daemon({
    store: new StateStore(join(dir, 'state')),
    orchestrator: new FakeOrchestrator(),
    gateway: {
      upsertApi: async (spec: ApiSpec) => {
        const code = refusals.get(spec.name);
        if (code === 'ENG_GATEWAY_LISTEN') throw new EngineError(code, `gateway cannot listen on 127.0.0.1:${spec.networking.localPort} (EADDRINUSE)`);
        if (code) throw new EngineError(code, `endpoint ${spec.networking.endpoint} is already routed`);
      },
      removeApi: async () => {},
      urlFor: (s) => `http://127.0.0.1:8888${s.networking.endpoint}`,
    },
    metrics,
    events,
    autoscalers: { create: (_spec, o) => fakeAutoscaler(o.replicas) },
    loadSpecs: loadSpecs ?? ((file) => loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, target: 'local' })),
    servedPredictorTypes: ['javascript'],
    clock: new ManualClock(1_000),
    log,
    onShutdown: () => {},
  });
  await daemon.start();
  const control = new ControlApi({ host: '127.0.0.1', port: 0, service: daemon, log });
  const r: Running = { daemon, control, base: `http://127.0.0.1:${(await control.start()).port}`, logs };
  running.push(r);
  return r;
}

async function stop(r: Running): Promise<void> {
  running.splice(running.indexOf(r), 1);
  await r.control.close();
  await r.daemon.close();
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const bundleOf = (yaml: string): ProjectBundle => ({
  configFile: 'myelin.yaml',
  files: [
    { path: 'myelin.yaml', data: b64(yaml) },
    { path: 'predictor.mjs', data: b64('export class Predictor { predict(p) { return p; } }\n') },
  ],
});

/** An API entry starting with `- name: <name>` (the predictor needs nothing else), plus `extra` lines. */
const api = (name: string, extra = '') => `- name: ${name}\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n    path: predictor.mjs\n${extra}`;

async function deploy(base: string, bundle: ProjectBundle): Promise<{ status: number; body: { code?: string; error?: string; problems?: ConfigProblem[] } }> {
  const res = await fetch(`${base}/v1/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bundle, force: false }) });
  return { status: res.status, body: (await res.json()) as { code?: string; problems?: ConfigProblem[] } };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-daemon-config-errors-'));
});
afterEach(async () => {
  for (const r of [...running]) await stop(r);
  await rm(dir, { recursive: true, force: true });
});

describe('a route the gateway refuses is a config problem at the field it comes from', () => {
  // `ok` (lines 2–6) routes; `bad` starts on line 7, so no problem of it can be at line 1 by chance.
  const head = `# an API that routes, then the one the gateway refuses\n${api('ok')}`;
  const cases: Array<{ name: string; yaml: string; code: 'ENG_GATEWAY_LISTEN' | 'ENG_GATEWAY_ENDPOINT_TAKEN'; want: Pick<ConfigProblem, 'line' | 'col' | 'field'> }> = [
    {
      name: 'an endpoint that is taken: its endpoint line',
      yaml: head + api('bad', '  networking:\n    endpoint: /shared\n'),
      code: 'ENG_GATEWAY_ENDPOINT_TAKEN',
      want: { line: 13, col: 5, field: 'networking.endpoint' },
    },
    {
      name: 'an endpoint that is not written: the name it derives from',
      yaml: head + api('bad', '  networking:\n    local_port: 9100\n'),
      code: 'ENG_GATEWAY_ENDPOINT_TAKEN',
      want: { line: 7, col: 3, field: 'networking.endpoint' },
    },
    {
      name: 'a local_port that cannot be opened: its local_port line',
      yaml: head + api('bad', '  networking:\n    endpoint: /bad\n    local_port: 9100\n'),
      code: 'ENG_GATEWAY_LISTEN',
      want: { line: 14, col: 5, field: 'networking.local_port' },
    },
    {
      name: "the shared port, local_port not written: the API's entry",
      yaml: head + api('bad'),
      code: 'ENG_GATEWAY_LISTEN',
      want: { line: 7, col: 3, field: 'networking.local_port' },
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { base } = await startDaemon(new Map([['bad', c.code]]));
      const got = await deploy(base, bundleOf(c.yaml));
      assert.equal(got.status, 400, JSON.stringify(got.body));
      assert.equal(got.body.code, 'ENG_CONFIG_INVALID');
      assert.equal(got.body.problems?.length, 1);
      const p = got.body.problems![0]!;
      assert.deepEqual({ file: p.file, api: p.api, line: p.line, col: p.col, field: p.field }, { file: 'myelin.yaml', api: 'bad', ...c.want }, `want line ${c.want.line}, got ${p.line}`);
      assert.match(p.message, c.code === 'ENG_GATEWAY_LISTEN' ? /^gateway cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)$/ : /^endpoint \/\w+ is already routed$/);
      assert.equal(got.body.error, `myelin.yaml:${c.want.line}:${c.want.col}: bad: ${c.want.field}: ${p.message}`);
    });
  }
});

describe('restoring stored APIs', () => {
  const yaml = `# restored on start\n${api('ok')}${api('bad', '  networking:\n    local_port: 9100\n')}`;

  test('a port that cannot be opened at restore: the reason points at local_port, not 1:1', async () => {
    const first = await startDaemon(new Map());
    assert.equal((await deploy(first.base, bundleOf(yaml))).status, 200);
    await stop(first);
    const second = await startDaemon(new Map([['bad', 'ENG_GATEWAY_LISTEN']]));
    const listed = new Map((await second.daemon.list()).map((s) => [s.name, s]));
    assert.equal(listed.get('ok')?.status, 'unknown');
    assert.equal(listed.get('bad')?.status, 'error');
    assert.equal(listed.get('bad')?.message, 'could not restore it: myelin.yaml:13:5: bad: networking.local_port: gateway cannot listen on 127.0.0.1:9100 (EADDRINUSE)');
  });

  test('an API its stored file no longer defines: ENG_API_NOT_IN_CONFIG, listed with the same reason', async () => {
    const first = await startDaemon(new Map());
    assert.equal((await deploy(first.base, bundleOf(yaml))).status, 200);
    await stop(first);
    // The loader of a newer version that reads only `ok` out of the stored file.
    const real: SpecLoader = (file) => loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, target: 'local' });
    const second = await startDaemon(new Map(), async (file) => {
      const loaded = await real(file);
      return { ...loaded, specs: loaded.specs.filter((s) => s.name !== 'bad') };
    });
    const reason = 'could not restore it: bad is no longer in myelin.yaml';
    const res = await fetch(`${second.base}/v1/apis`);
    assert.equal(res.status, 200);
    const { apis: listed } = (await res.json()) as { apis: Array<{ name: string; status: string; message?: string }> };
    assert.deepEqual(listed.map((s) => [s.name, s.status, s.name === 'bad' ? s.message : undefined]), [
      ['bad', 'error', reason],
      ['ok', 'unknown', undefined],
    ]);
    const logged = second.logs.find((l) => l.msg === 'could not restore api');
    assert.ok(logged, 'the restore failure is logged');
    assert.equal(logged.api, 'bad');
    assert.deepEqual([(logged.err as { type?: string }).type, (logged.err as { code?: string }).code], ['EngineError', 'ENG_API_NOT_IN_CONFIG']);
  });
});
