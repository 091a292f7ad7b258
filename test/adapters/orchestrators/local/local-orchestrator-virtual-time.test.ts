import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { MachineComputePlacement } from '../../../../adapters/compute/machine-compute-placement.js';
import { LocalOrchestrator } from '../../../../adapters/orchestrators/local/local-orchestrator.js';
import { NodeEntryReplicaLauncher } from '../../../../adapters/orchestrators/local/replica-launcher.js';
import type { ReplicaInfo } from '../../../../core/ports/orchestrator-target.js';
import { ReplayScheduler } from '../../../../core/scaling/replay-scheduler.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FAKE_REPLICA, TEST_CAPACITY, ofApi, pidAlive, waitFor } from '../../../harness/local-orchestrator-harness.js';

/**
 * The orchestrator's timers on a virtual clock: real replica processes crash in real time, but the
 * backoff before each replacement, the crash-loop window and the probe interval move only when the
 * test advances the scheduler, so minutes of backoff and a five-minute window take no wall time.
 */
describe('LocalOrchestrator on a virtual-time scheduler (real child processes)', () => {
  test('replacements start exactly at 1 s, 3 s and 7 s of virtual time; the crash loop ends when its crashes leave the 5-minute window', async () => {
    const vt = new ReplayScheduler(0);
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const runDir = await mkdtemp(join(tmpdir(), 'myelin-orch-vt-'));
    const orch = new LocalOrchestrator(
      { runDir, backoffBaseMs: 1000, backoffMaxMs: 30_000, crashLoopThreshold: 3, crashLoopWindowMs: 300_000, probeIntervalMs: 500, stopGracePeriodMs: 3000 },
      new NodeEntryReplicaLauncher({ entry: FAKE_REPLICA }),
      new MachineComputePlacement({ capacity: TEST_CAPACITY }, log),
      vt,
      log,
      vt,
    );
    const lists: (readonly ReplicaInfo[])[] = [];
    const pids = new Set<number>();
    const sub = orch.replicas$().subscribe((l) => {
      lists.push(l);
      for (const r of l) if (r.pid !== undefined) pids.add(r.pid);
    });
    const now = (): readonly ReplicaInfo[] => ofApi(lists[lists.length - 1] ?? [], 'vt');
    const ids = (): string[] => [...new Set(lists.flatMap((l) => ofApi(l, 'vt').map((r) => r.id)))];
    const crashedNow = (id: string): boolean => now().some((r) => r.id === id && r.state === 'crashed');
    try {
      await orch.start();
      const crashing = apiSpecFixture({ name: 'vt', predictor: { env: { FAKE_CRASH_ON_START: '1' } } });
      await orch.apply({ spec: crashing, revision: 'vt00000000', replicas: 1 });

      // crash n at virtual time t is replaced at t + 1 s · 2^(n−1)
      const schedule = [
        { id: 'vt-vt000000-0', crashedAt: 0, replacedAt: 1000 },
        { id: 'vt-vt000000-1', crashedAt: 1000, replacedAt: 3000 },
        { id: 'vt-vt000000-2', crashedAt: 3000, replacedAt: 7000 },
      ];
      for (const [n, step] of schedule.entries()) {
        await waitFor(`${step.id} crashed`, () => crashedNow(step.id));
        assert.equal(vt.now(), step.crashedAt);
        assert.equal(orch.status('vt')?.failed, n + 1);
        if (n === 2) {
          // Healthy again from the next replacement on (same revision, new spec).
          await orch.apply({ spec: apiSpecFixture({ name: 'vt' }), revision: 'vt00000000', replicas: 1 });
        }
        vt.advanceTo(step.replacedAt - 1);
        assert.deepEqual(ids(), schedule.slice(0, n + 1).map((s) => s.id), `nothing replaced before ${step.replacedAt} ms`);
        assert.ok(crashedNow(step.id), 'the crashed entry stays until its replacement');
        vt.advanceTo(step.replacedAt);
        assert.ok(
          now().some((r) => r.id === `vt-vt000000-${n + 1}`),
          `replacement ${n + 1} created at ${step.replacedAt} ms: ${JSON.stringify(now())}`,
        );
      }

      const s3 = orch.status('vt')!;
      assert.equal(s3.crashLooping, true);
      assert.match(s3.message ?? '', /^replicas keep crashing \(3 crashes in 5m, last: exit code 3\)$/);

      // The fourth replica runs the healthy spec; its probes repeat every 500 ms of virtual time.
      const healthy = 'vt-vt000000-3';
      await waitFor(`${healthy} ready`, () => {
        if (now().some((r) => r.id === healthy && r.state === 'ready')) return true;
        vt.advanceTo(vt.now() + 500);
        return false;
      });

      // Crashes at 0, 1000 and 3000 leave the window at 300 000, 301 000 and 303 000.
      vt.advanceTo(300_000);
      assert.deepEqual([orch.status('vt')?.failed, orch.status('vt')?.crashLooping], [2, false]);
      vt.advanceTo(303_000);
      const s = orch.status('vt')!;
      assert.deepEqual([s.failed, s.crashLooping, s.upToDate, s.message], [0, false, 1, undefined]);
      assert.deepEqual(ofApi(now(), 'vt').map((r) => [r.id, r.state]), [[healthy, 'ready']]);
    } finally {
      // drainDelayMs is 0, so stopping the ready replica waits on no virtual timer.
      await orch.close();
      sub.unsubscribe();
      await rm(runDir, { recursive: true, force: true });
    }
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });
});
