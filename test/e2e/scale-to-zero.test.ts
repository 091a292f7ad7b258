import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { EngineEvent, ScalingDecidedEvent, ScalingPokeEvent } from '../../core/events/engine-event.js';
import { isEngineEvent } from '../../core/events/event-validator.js';
import { renderApiList } from '../../serving/cli/commands/get.js';
import { packProject } from '../../serving/daemon/project-bundle.js';
import { runDaemon, type RunningDaemon } from '../../serving/daemon/run-daemon.js';
import { Gateway } from '../../serving/gateway/gateway.js';

// Scale to zero and back on a real daemon (in this process), real replica processes and the real
// gateway: an idle API goes to zero replicas, a burst of 20 requests is held at the gateway, pokes
// the autoscaler, starts several replicas, and every request is answered; a request held longer
// than hold_timeout is answered 503 naming its API. Short windows keep it to seconds.

const PREDICTOR = `import type { PredictArgs, PredictorContext } from 'myelin';
export class Predictor {
  private readonly delayMs: number;
  constructor({ config }: PredictorContext) {
    this.delayMs = Number(config.delay_ms ?? 0);
    // A slow model load (blocks like a real one), without burning CPU.
    const loadMs = Number(config.load_ms ?? 0);
    if (loadMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, loadMs);
  }
  async predict({ payload }: PredictArgs) {
    await new Promise((r) => setTimeout(r, this.delayMs));
    return { pid: process.pid, echo: payload };
  }
}
`;

const CONFIG = `- name: idle
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      delay_ms: 300
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 0
    max_replicas: 3
    target_replica_concurrency: 2
    tick: 1s
    window: 2s
    downscale_stabilization_period: 2s
    upscale_stabilization_period: 0s
    hold_timeout: 90s
- name: slowstart
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      load_ms: 4000
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 0
    init_replicas: 0
    max_replicas: 1
    tick: 1s
    window: 2s
    downscale_stabilization_period: 30s
    hold_timeout: 1s
`;

let dir: string;
let running: RunningDaemon;
const events: EngineEvent[] = [];

async function waitFor<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function url(api: string): Promise<string> {
  return (await running.daemon.get(api)).url;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-zero-'));
  const log = pino({ level: 'info' }, pino.destination({ dest: join(dir, 'daemon.log'), sync: true }));
  running = await runDaemon({
    stateDir: join(dir, 'state'),
    target: 'local',
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log,
    local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 5000, probeIntervalMs: 100 },
  });
  running.daemon.events$({}).subscribe((e) => events.push(e));
  const project = join(dir, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'predictor.ts'), PREDICTOR);
  await writeFile(join(project, 'myelin.yaml'), CONFIG);
  await running.daemon.deploy(await packProject(project, 'myelin.yaml'), { force: true });
});

after(async () => {
  await running?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('idle API goes to zero; a burst of 20 held requests is all answered and starts several replicas', async () => {
  // Deployed with one replica (init_replicas defaults to 1 at min_replicas 0), which answers.
  await waitFor('idle live with one replica', 90_000, async () => (await running.daemon.get('idle')).upToDate === 1);
  const first = await fetch(await url('idle'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '"warm"' });
  assert.equal(first.status, 200);

  // No traffic for window + downscale stabilization ⇒ 0 replicas, shown as `scaled to zero`.
  const zeroAt = await waitFor('idle scaled to zero', 60_000, async () => {
    const g = await running.daemon.get('idle');
    return g.status === 'scaled to zero' && g.requested === 0 && g.replicas.length === 0 ? Date.now() : false;
  });
  const down = events.find((e): e is ScalingDecidedEvent => e.type === 'scaling.decided' && e.api === 'idle' && e.to === 0);
  assert.ok(down, 'a scaling.decided to 0');
  assert.equal(down.from, 1);
  const list = renderApiList(await running.daemon.list(), Date.now());
  assert.match(list, /idle\s+scaled to zero/, `myelin get shows it:\n${list}`);
  assert.ok(!events.some((e) => e.type === 'metrics.unavailable' && e.api === 'idle' && e.t >= zeroAt - 1500), 'zero replicas is not a metrics outage');

  // A burst of 20 at zero: every request is held, then answered; none lost.
  const sinceBurst = events.length;
  const target = await url('idle');
  const answers = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const r = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
      return { status: r.status, body: (await r.json()) as { echo?: { i: number }; error?: string } };
    }),
  );
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(20).fill(200),
    `every held request answered 200: ${JSON.stringify(answers.filter((a) => a.status !== 200))}`,
  );
  assert.deepEqual(answers.map((a) => a.body.echo?.i), Array.from({ length: 20 }, (_, i) => i), 'each request got its own answer');

  const burst = events.slice(sinceBurst);
  const poke = burst.find((e): e is ScalingPokeEvent => e.type === 'scaling.poke' && e.api === 'idle');
  assert.ok(poke, 'the gateway poked the autoscaler');
  assert.equal(poke.replicas, 0);
  assert.ok(isEngineEvent(poke), 'the poke event fits event.schema.json');
  const ups = burst.filter((e): e is ScalingDecidedEvent => e.type === 'scaling.decided' && e.api === 'idle' && e.to > e.from);
  assert.ok(ups.length > 0 && ups[0].from === 0, `scaled up from 0: ${JSON.stringify(ups)}`);
  const most = Math.max(...ups.map((e) => e.to));
  // 20 held at target 2 ask for 10, bounded by max_replicas 3; at least more than one.
  assert.ok(most > 1, `the burst asked for more than one replica (got up to ${most}: ${ups.map((e) => e.reason).join(' | ')})`);
  const g = await running.daemon.get('idle');
  assert.notEqual(g.status, 'scaled to zero');
  assert.ok(g.requested > 1, `requested ${g.requested}`);
});

test('a request held longer than hold_timeout gets 503 naming the API; later ones are served', async () => {
  const target = await url('slowstart');
  assert.equal((await running.daemon.get('slowstart')).status, 'scaled to zero', 'init_replicas 0 starts at zero');
  const r = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '1' });
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '1');
  const body = (await r.json()) as { error: string };
  assert.match(body.error, /slowstart/, `the message names the API: ${body.error}`);
  assert.match(body.error, /hold_timeout/);
  // The poke started the replica anyway: once it has loaded, requests are served.
  await waitFor('slowstart ready', 90_000, async () => (await running.daemon.get('slowstart')).upToDate === 1);
  const ok = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '2' });
  assert.equal(ok.status, 200);
  const gatewayMetrics = await running.container.get(Gateway).metrics();
  assert.match(gatewayMetrics, /myelin_gateway_unavailable_total\{api="slowstart",reason="hold_timeout"\} 1/);
});
