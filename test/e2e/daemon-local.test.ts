import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ReplicaEvent } from '../../core/events/engine-event.js';
import { nextEvent, removeDir, startE2eDaemon, startLoad, waitFor, type E2eDaemon } from './e2e-harness.js';
import { alive, scaleCycle } from './e2e-scenarios.js';

// The whole product on loopback, driven as a user does: `myelin up` as a child process, `myelin deploy`,
// the control API over HTTP (events as server-sent events), replicas as its child processes.
let d: E2eDaemon;
before(async () => {
  d = await startE2eDaemon();
});
after(async () => {
  await d?.close();
  if (d) await removeDir(d.dir);
});

test('local transport: deploy, predict, scale up under a load step, scale down, delete', async () => {
  await scaleCycle(d, 'scaler');
});

const twoReplicas = (version: string, delay = 50, maxReplicas = 2) => `- name: steady
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      delay_ms: ${delay}
      version: ${version}
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 2
    max_replicas: ${maxReplicas}
  update_strategy:
    max_surge: 1
    max_unavailable: 0
`;

test('a rolling update under constant load fails no request', async () => {
  await d.deploy(twoReplicas('v1'));
  await waitFor('steady live', 60_000, async () => (await d.get('steady')).upToDate === 2);
  const url = await d.url('steady');
  const load = startLoad(url, 4, { maxMs: 90_000, maxRequests: 50_000 });
  await waitFor('load flowing', 10_000, () => load.result.ok > 20);
  await d.deploy(twoReplicas('v2'));
  const revision = (await d.get('steady')).revision;
  await waitFor('rollout to v2 done', 90_000, async () => {
    const g = await d.get('steady');
    return g.upToDate === 2 && g.stale === 0 && g.replicas.every((r) => r.revision === revision && r.state === 'ready');
  });
  await waitFor('v2 answering', 10_000, () => load.result.versions.has('v2'));
  const result = await load.stop();
  assert.equal(result.failed, 0, `failed requests during the rollout: ${JSON.stringify([...result.statuses])}`);
  assert.ok(result.versions.has('v1') && result.versions.has('v2'));
});

test('a change to autoscaling alone applies without restarting replicas', async () => {
  const before = await d.get('steady');
  const pids = before.replicas.map((r) => r.pid).sort();
  await d.deploy(twoReplicas('v2', 50, 3));
  const after = await d.get('steady');
  assert.equal(after.revision, before.revision, 'same revision');
  assert.equal((after.spec as { autoscaling: { maxReplicas: number } }).autoscaling.maxReplicas, 3);
  assert.deepEqual(after.replicas.map((r) => r.pid).sort(), pids, 'the same processes serve');
  assert.ok((await d.recentEvents({ api: 'steady', sinceMs: 0 })).some((e) => e.type === 'api.deployed' && (e as { action?: string }).action === 'reconfigured'));
});

test('kill -9 of a replica under load: it is replaced, and only requests in flight on it fail', async () => {
  await waitFor('steady has two ready replicas', 30_000, async () => (await d.get('steady')).upToDate === 2);
  const url = await d.url('steady');
  const clients = 4;
  const load = startLoad(url, clients, { maxMs: 90_000, maxRequests: 50_000 });
  await waitFor('load flowing', 10_000, () => load.result.ok > 20);
  const victim = (await d.get('steady')).replicas.find((r) => r.state === 'ready' && r.pid !== undefined)!;
  const crashed = nextEvent(d.events$({ api: 'steady' }), (e) => e.type === 'replica.crashed' && (e as ReplicaEvent).replica === victim.id, 20_000);
  process.kill(victim.pid!, 'SIGKILL');
  const event = (await crashed) as ReplicaEvent;
  assert.equal(event.signal, 'SIGKILL');
  await waitFor('replaced and two ready again', 60_000, async () => {
    const g = await d.get('steady');
    return g.upToDate === 2 && !g.replicas.some((r) => r.id === victim.id) ? g : undefined;
  });
  const okBefore = load.result.ok;
  await waitFor('traffic continues', 10_000, () => load.result.ok > okBefore + 20);
  const result = await load.stop();
  assert.ok(!alive(victim.pid!));
  // Each client has at most one request in flight, so at most `clients` requests were on the victim.
  assert.ok(result.failed <= clients, `${result.failed} failed (at most ${clients} were in flight on the killed replica): ${JSON.stringify([...result.statuses])}`);
});

test('a daemon restart restores every API and serves it again', async () => {
  const before = await d.get('steady');
  assert.deepEqual(await d.stop(), { code: 0, signal: null }, 'SIGTERM stops the daemon cleanly');
  const restarted = await startE2eDaemon({ dir: d.dir, stateDir: d.stateDir });
  d = restarted;
  await waitFor('steady restored and live', 60_000, async () => (await d.get('steady')).upToDate === 2);
  const after = await d.get('steady');
  assert.equal(after.revision, before.revision, 'same revision after restart');
  const res = await fetch(after.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { version: string }).version, 'v2');
  const bad = await fetch(after.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '"bad"' });
  assert.equal(bad.status, 400, 'HttpError from the user predictor keeps its status');
  await d.delete('steady');
});

test('an API that cannot be restored is shown as error, not dropped; delete clears it and its project folder', async () => {
  await d.deploy(twoReplicas('v1').replace('name: steady', 'name: fragile').replace('min_replicas: 2', 'min_replicas: 1'));
  await waitFor('fragile live', 60_000, async () => (await d.get('fragile')).status === 'live');
  const { readFile, rm: remove, readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const stored = JSON.parse(await readFile(join(d.stateDir, 'apis', 'fragile.json'), 'utf8')) as { projectDir: string };
  await d.stop();
  await remove(join(stored.projectDir, 'predictor.ts')); // the stored project lost a file
  d = await startE2eDaemon({ dir: d.dir, stateDir: d.stateDir });
  const list = await d.list();
  const fragile = list.find((a) => a.name === 'fragile');
  assert.equal(fragile?.status, 'error');
  assert.match(fragile?.message ?? '', /could not restore it: .*predictor/);
  assert.equal((await d.get('fragile')).status, 'error');
  await d.delete('fragile');
  assert.ok(!(await d.list()).some((a) => a.name === 'fragile'));
  assert.ok(!(await readdir(join(d.stateDir, 'projects'))).includes(stored.projectDir.split('/').pop()!), 'its project folder is gone');
});
