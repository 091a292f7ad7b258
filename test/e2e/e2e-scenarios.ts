import assert from 'node:assert/strict';
import type { ScalingDecidedEvent } from '../../core/events/engine-event.js';
import { nextEvent, startLoad, waitFor, type E2eDaemon } from './e2e-harness.js';

/** Short windows so a load step is answered in seconds (tick 1 s, window 2 s, no upscale hold). */
export function scalingYaml(name: string, extra = ''): string {
  return `- name: ${name}
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      delay_ms: 150
${extra}
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 1
    max_replicas: 3
    target_replica_concurrency: 1
    tick: 1s
    window: 2s
    upscale_stabilization_period: 0s
    downscale_stabilization_period: 2s
    max_upscale_factor: 3
`;
}

/**
 * deploy → predict → a bounded load step → scale-up seen in events → load stops → scale-down → delete.
 * Shared by the local and the nats e2e files. The deploy, the delete and the last `get` go through the
 * CLI binary (exit code and `-o json` output); the rest through the control API and the gateway.
 */
export async function scaleCycle(d: E2eDaemon, name: string): Promise<void> {
  const since = Date.now();
  const deployed = await d.deploy(scalingYaml(name));
  assert.deepEqual(deployed.results.map((r) => [r.api, r.action]), [[name, 'created']]);
  await waitFor(`${name} live`, 60_000, async () => (await d.get(name)).status === 'live');
  const url = await d.url(name);
  assert.ok(url.startsWith(`${d.gatewayUrl}/`), `${url} is on the gateway ${d.gatewayUrl}`);
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { version: string }).version, 'v1');

  const up = nextEvent(d.events$({ api: name, sinceMs: since }), (e) => e.type === 'scaling.decided' && e.to > e.from, 45_000);
  const load = startLoad(url, 6, { maxMs: 60_000, maxRequests: 20_000 });
  const decided = (await up) as ScalingDecidedEvent;
  assert.ok(decided.to >= 2, `scaled up to ${decided.to}`);
  assert.ok(decided.avgInFlight > 1, `avg in flight ${decided.avgInFlight}`);
  await waitFor(`${name} serving on ${decided.to} replicas`, 60_000, async () => {
    const g = await d.get(name);
    return g.upToDate >= 2;
  });
  // The new replicas take traffic as soon as they are ready.
  await waitFor('requests answered by two replicas', 20_000, () => load.result.pids.size >= 2);
  const stoppedAt = Date.now();
  const result = await load.stop();
  assert.equal(result.failed, 0, `failed requests under load: ${JSON.stringify([...result.statuses])}`);

  const peak = (await d.get(name)).requested;
  // Replayed from when the load stopped, so a decision taken while stopping is not missed.
  await nextEvent(d.events$({ api: name, sinceMs: stoppedAt }), (e) => e.type === 'scaling.decided' && e.to < e.from, 45_000);
  // Without load the API steps down to min_replicas (one step per downscale stabilization period).
  await waitFor(`${name} back to 1 replica from ${peak}`, 60_000, async () => (await d.get(name)).requested === 1);
  const pids = (await d.get(name)).replicas.map((r) => r.pid).filter((p): p is number => p !== undefined);
  const del = await d.cli(['delete', name, '-o', 'json']);
  assert.equal(del.code, 0, del.stderr);
  assert.deepEqual(JSON.parse(del.stdout), { deleted: name });
  const gone = await d.cli(['get', name, '-o', 'json']);
  assert.equal(gone.code, 1, gone.stdout);
  const failure = JSON.parse(gone.stdout) as { errors: { message: string }[] };
  assert.match(failure.errors[0].message, /not deployed/);
  await waitFor('replica processes gone', 20_000, () => pids.every((p) => !alive(p)));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
