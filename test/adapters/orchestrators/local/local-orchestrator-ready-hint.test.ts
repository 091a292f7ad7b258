import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FAST_CONFIG, latest, ofApi, startTestOrchestrator, waitFor, type TestOrchestrator } from '../../../harness/local-orchestrator-harness.js';

// A replica's `myelin.replica.ready` message makes the orchestrator probe at once instead of at the next
// probe interval (the probe still decides). With a 10-minute interval, a replica that is unready at its
// first probe is only in service before the test's deadline through the hint.
let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ config: { ...FAST_CONFIG, probeIntervalMs: 600_000 } });
});
after(async () => {
  await t?.close();
});

async function deploy(api: string, env: Record<string, string>): Promise<void> {
  await t.orch.apply({ spec: apiSpecFixture({ name: api, compute: { cpuMillis: 100 }, predictor: { env: { FAKE_READY_DELAY_MS: '400', ...env } } }), revision: `rev-${api}`, replicas: 1 });
}

test('the ready message puts a replica in service before the next probe interval', async () => {
  await deploy('hinted', { FAKE_SEND_READY: '1' });
  const [ready] = await waitFor('hinted replica ready', () => {
    const r = ofApi(latest(t), 'hinted', 'ready');
    return r.length === 1 && r;
  }, 30_000);
  assert.ok(ready.readyAt! - ready.createdAt < 600_000);
});

test('without the message the replica waits for the next probe (the hint is what made the difference)', async () => {
  await deploy('unhinted', {});
  await waitFor('unhinted replica listening', () => ofApi(latest(t), 'unhinted', 'starting').some((r) => r.address !== undefined) || undefined, 30_000);
  // Well past its 400 ms start: still not ready, since the next probe is 10 minutes away.
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal(ofApi(latest(t), 'unhinted', 'ready').length, 0);
  assert.equal(ofApi(latest(t), 'unhinted', 'starting').length, 1);
});
