import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NatsServer } from '../harness/nats-server.js';
import { removeDir, startE2eDaemon, waitFor, type E2eDaemon } from './e2e-harness.js';
import { scaleCycle, scalingYaml } from './e2e-scenarios.js';

// The same product run with `--nats`: replicas publish samples to a real nats-server, the daemon reads
// them and publishes events there (JetStream), and the server is killed and restarted mid-run.
let nats: NatsServer;
let d: E2eDaemon;
before(async () => {
  nats = await NatsServer.start({ jetstream: true });
  d = await startE2eDaemon({ nats: nats.url });
});
after(async () => {
  await d?.close();
  if (d) await removeDir(d.dir);
  await nats?.stop();
});

test('nats transport: deploy, predict, scale up under a load step, scale down, delete', async () => {
  await scaleCycle(d, 'natscaler');
});

test('nats transport: the server dies and comes back; replicas keep serving and scaling holds, then resumes', async () => {
  // Two replicas held by a long downscale stabilization: silence must not scale them down.
  await d.deploy(
    scalingYaml('outage').replace('    downscale_stabilization_period: 2s\n', '    downscale_stabilization_period: 10m\n    init_replicas: 2\n'),
  );
  await waitFor('outage live on 2 replicas', 60_000, async () => (await d.get('outage')).upToDate === 2);
  await waitFor('autoscaler sees samples', 20_000, async () => (await d.get('outage')).autoscaler.avgInFlight !== null);
  await nats.stop();
  const down = Date.now();
  await waitFor('metrics.unavailable while NATS is down', 20_000, async () =>
    (await d.recentEvents({ api: 'outage', sinceMs: down })).some((e) => e.type === 'metrics.unavailable'),
  );
  // Predictions do not travel over NATS: the API keeps answering, and the count is held, never scaled down.
  const res = await fetch(await d.url('outage'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 200);
  assert.equal((await d.get('outage')).requested, 2);
  assert.ok(!(await d.recentEvents({ api: 'outage', sinceMs: down })).some((e) => e.type === 'scaling.decided'), 'no decision during the outage');
  await nats.restart();
  await waitFor('samples flow again after the restart', 60_000, async () => {
    const a = (await d.get('outage')).autoscaler;
    return a.lastTick !== null && a.lastTick.t > down && !/unavailable/.test(a.lastTick.reason);
  });
  await d.delete('outage');
});
