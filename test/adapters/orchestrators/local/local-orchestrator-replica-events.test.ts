import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { MachineComputePlacement } from '../../../../adapters/compute/machine-compute-placement.js';
import { LocalOrchestrator } from '../../../../adapters/orchestrators/local/local-orchestrator.js';
import { NodeEntryReplicaLauncher, replicaEventOf } from '../../../../adapters/orchestrators/local/replica-launcher.js';
import type { EngineEvent } from '../../../../core/events/engine-event.js';
import type { ReplicaInfo } from '../../../../core/ports/orchestrator-target.js';
import { isEngineEvent } from '../../../../core/events/event-validator.js';
import { SystemClock } from '../../../../serving/composition/system-clock.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FAST_CONFIG, TEST_CAPACITY, ofApi, replicaRequest, waitFor } from '../../../harness/local-orchestrator-harness.js';

// Events replicas report over IPC (`myelin.replica.event`), through a real LocalOrchestrator and real
// child processes (event-replica.mjs): checked, attributed to the sender, or dropped and counted.
const EVENT_REPLICA = fileURLToPath(new URL('./event-replica.mjs', import.meta.url));

let orch: LocalOrchestrator;
let runDir: string;
let cacheDir: string;
const events: EngineEvent[] = [];
let replicas: readonly ReplicaInfo[] = [];

before(async () => {
  runDir = await mkdtemp(join(tmpdir(), 'myelin-orch-events-'));
  cacheDir = join(runDir, 'models');
  // The daemon's environment flows to the replicas (store credentials and endpoints among it).
  process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:1';
  process.env.AWS_ACCESS_KEY_ID = 'FROM-THE-DAEMON';
  const log = pino({ level: 'silent' });
  orch = new LocalOrchestrator(
    { ...FAST_CONFIG, runDir: join(runDir, 'run'), modelCacheDir: cacheDir },
    new NodeEntryReplicaLauncher({ entry: EVENT_REPLICA }),
    new MachineComputePlacement({ capacity: TEST_CAPACITY }, log),
    new SystemClock(),
    log,
  );
  await orch.start();
  orch.events$().subscribe((e) => events.push(e));
  orch.replicas$().subscribe((l) => (replicas = l));
});
after(async () => {
  await orch?.close();
  if (runDir) await rm(runDir, { recursive: true, force: true });
});

const t = 1_700_000_000_000;
const download = { v: 1, type: 'model.download', api: 'someone-else', t, url: 's3://b/m/1/', bytes: 10, total: 100, rateBytesPerSec: 5, done: false, replica: 'forged-replica' };

/** Deploys `api` whose replica sends `messages`, and waits until its closing marker event arrived. */
async function deployWith(api: string, messages: readonly unknown[], env: Readonly<Record<string, string>> = {}): Promise<EngineEvent[]> {
  const from = events.length;
  await orch.apply({
    spec: apiSpecFixture({ name: api, compute: { cpuMillis: 100 }, predictor: { env: { EVENT_REPLICA_MESSAGES: JSON.stringify(messages), ...env } } }),
    revision: `rev-${api}`,
    replicas: 1,
  });
  await waitFor(`${api}'s marker event`, () => events.slice(from).some((e) => e.api === api && e.type === 'model.version' && e.model === 'sent'));
  return events.slice(from).filter((e) => !(e.type === 'model.version' && e.model === 'sent'));
}

describe('replica events over IPC', () => {
  test('replicaEventOf reads only myelin.replica.event messages', () => {
    assert.deepEqual(replicaEventOf({ type: 'myelin.replica.event', event: { a: 1 } }), { a: 1 });
    assert.equal(replicaEventOf({ type: 'myelin.replica.event' }), null);
    assert.equal(replicaEventOf({ type: 'myelin.metrics', sample: {} }), null);
    assert.equal(replicaEventOf('myelin.replica.event'), null);
  });

  test('a valid event is published with the api and replica the orchestrator knows, whatever the replica claimed', async () => {
    const got = await deployWith('ev-good', [
      { type: 'myelin.replica.event', event: download },
      { type: 'myelin.replica.event', event: { v: 1, type: 'model.version', api: 'x', t, model: 'iris', version: '2', change: 'removed' } },
    ]);
    const [replica] = ofApi(replicas, 'ev-good');
    assert.ok(replica, 'the replica is listed');
    assert.deepEqual(got, [
      { ...download, api: 'ev-good', replica: replica.id },
      { v: 1, type: 'model.version', api: 'ev-good', t, model: 'iris', version: '2', change: 'removed', replica: replica.id },
    ]);
    assert.ok(got.every(isEngineEvent));
  });

  test('invalid events and types a replica may not report are dropped and counted', async () => {
    const before = orch.droppedReplicaEvents;
    const got = await deployWith('ev-bad', [
      { type: 'myelin.replica.event', event: { ...download, total: undefined } },
      { type: 'myelin.replica.event', event: { ...download, bytes: -1 } },
      { type: 'myelin.replica.event', event: { v: 1, type: 'scaling.decided', api: 'ev-bad', t, from: 1, to: 9, policy: 'cortex', avgInFlight: 0, target: 1, raw: 9, recommendation: 9, reason: 'forged' } },
      { type: 'myelin.replica.event', event: 'model.download' },
      { type: 'myelin.replica.event', event: { ...download, url: 'x'.repeat(70_000) } },
    ]);
    assert.deepEqual(got, []);
    assert.equal(orch.droppedReplicaEvents - before, 5);
  });

  test('every replica gets MYELIN_MODEL_CACHE (over predictor.env) and the daemon environment’s AWS_* settings', async () => {
    await deployWith('ev-env', [], { MYELIN_MODEL_CACHE: '/somewhere/else' });
    const r = await waitFor('ev-env ready', () => ofApi(replicas, 'ev-env', 'ready')[0]);
    const env = JSON.parse((await replicaRequest(r.address, 'GET', '/env')).body) as Record<string, string>;
    assert.equal(env.MYELIN_MODEL_CACHE, cacheDir);
    assert.equal(env.AWS_ENDPOINT_URL, 'http://127.0.0.1:1');
    assert.equal(env.AWS_ACCESS_KEY_ID, 'FROM-THE-DAEMON');
  });
});
