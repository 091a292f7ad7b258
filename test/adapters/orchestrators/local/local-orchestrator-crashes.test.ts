import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReplicaCrash } from '../../../../adapters/orchestrators/local/local-orchestrator.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { latest, ofApi, pidAlive, replicaRequest, startTestOrchestrator, waitFor } from '../../../harness/local-orchestrator-harness.js';

describe('LocalOrchestrator crash handling (real child processes)', () => {
  test('kill -9 of a replica: crashed event, replaced after a backoff that doubles per crash', async () => {
    const t = await startTestOrchestrator();
    const crashes: ReplicaCrash[] = [];
    const sub = t.orch.crashes$().subscribe((c) => crashes.push(c));
    try {
      await t.orch.apply({ spec: apiSpecFixture({ name: 'kill' }), revision: 'kill000000', replicas: 2 });
      const ready = await waitFor('2 ready', () => ofApi(latest(t), 'kill', 'ready').length === 2 && ofApi(latest(t), 'kill', 'ready'));
      const victim = ready[0];
      process.kill(victim.pid!, 'SIGKILL');

      const first = await waitFor('crash event', () => crashes[0]);
      assert.deepEqual(
        { ...first, t: 0, lastLogLines: [] },
        {
          api: 'kill',
          replica: victim.id,
          revision: 'kill000000',
          t: 0,
          exitCode: null,
          signal: 'SIGKILL',
          reason: 'killed by SIGKILL',
          restartInMs: 100,
          crashesInWindow: 1,
          crashLooping: false,
          lastLogLines: [],
        },
      );
      assert.ok(first.lastLogLines.includes(`fake replica ${victim.id} starting (pid ${victim.pid})`), first.lastLogLines.join('\n'));
      const crashedInfo = t.lists.flatMap((l) => l).find((r) => r.id === victim.id && r.state === 'crashed');
      assert.ok(crashedInfo, 'replicas$ showed the replica as crashed');
      assert.equal(crashedInfo.signal, 'SIGKILL');

      const replaced = await waitFor('replacement ready', () => {
        const now = ofApi(latest(t), 'kill', 'ready');
        return now.length === 2 && !now.some((r) => r.id === victim.id) && now;
      });
      const replacement = replaced.find((r) => r.id !== ready[1].id)!;
      assert.equal(replacement.id, 'kill-kill0000-2');
      assert.ok(!ofApi(latest(t), 'kill').some((r) => r.id === victim.id), 'the crashed entry is gone once replaced');
      // The crashed entry stayed in the list until its replacement was created.
      const firstWithReplacement = t.lists.findIndex((l) => l.some((r) => r.id === replacement.id));
      const lastWithCrashed = t.lists.findLastIndex((l) => l.some((r) => r.id === victim.id && r.state === 'crashed'));
      assert.ok(lastWithCrashed < firstWithReplacement);

      // A second crash of the same revision, this time an exit code: twice the delay.
      await replicaRequest(replacement.address, 'POST', '/crash').catch(() => undefined);
      const second = await waitFor('second crash event', () => crashes[1]);
      assert.equal(second.replica, replacement.id);
      assert.equal(second.reason, 'exit code 1');
      assert.equal(second.exitCode, 1);
      assert.equal(second.restartInMs, 200);
      assert.equal(second.crashesInWindow, 2);
      assert.ok(second.lastLogLines.includes(`fake replica ${replacement.id}: told to crash`));
      // replicas$ (what the daemon's replica.crashed event carries) says why, not only the exit code.
      const secondInfo = t.lists.flatMap((l) => l).find((r) => r.id === replacement.id && r.state === 'crashed');
      assert.match(secondInfo?.crashReason ?? '', new RegExp(`^exit code 1; last output:\\n[^]*fake replica ${replacement.id}: told to crash`));
      assert.ok((secondInfo?.crashReason ?? '').length <= 2049);

      await waitFor('2 ready after second crash', () => ofApi(latest(t), 'kill', 'ready').length === 2);
      const s = t.orch.status('kill')!;
      assert.equal(s.failed, 2);
      assert.equal(s.crashLooping, false);
      assert.equal(s.upToDate, 2);
      assert.ok(s.lastLogLines.includes(`fake replica ${replacement.id}: told to crash`));
      assert.equal(s.message, undefined);
    } finally {
      sub.unsubscribe();
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('a replica that crashes on start crash-loops: status says so with its last log lines', async () => {
    const t = await startTestOrchestrator();
    const crashes: ReplicaCrash[] = [];
    const sub = t.orch.crashes$().subscribe((c) => crashes.push(c));
    try {
      const spec = apiSpecFixture({ name: 'loop', predictor: { env: { FAKE_CRASH_ON_START: '1', FAKE_EXIT_CODE: '3' } } });
      await t.orch.apply({ spec, revision: 'loop000000', replicas: 1 });
      const s = await waitFor('crash loop', () => t.orch.status('loop')?.crashLooping && t.orch.status('loop'));
      assert.equal(s.upToDate, 0);
      assert.ok(s.failed >= 3);
      assert.match(s.message ?? '', /^replicas keep crashing \(\d+ crashes in 1m, last: exit code 3\)$/);
      const last = crashes[crashes.length - 1];
      assert.ok(s.lastLogLines.includes(`Error: predictor failed to load in ${last.replica}`), s.lastLogLines.join('\n'));
      assert.ok(s.lastLogLines.includes(`fake replica ${last.replica}: loading predictor`));
      assert.deepEqual(
        crashes.slice(0, 3).map((c) => [c.restartInMs, c.crashesInWindow, c.crashLooping]),
        [
          [100, 1, false],
          [200, 2, false],
          [400, 3, true],
        ],
      );
      // Each crash is a new process, replaced under a new id.
      assert.equal(new Set(crashes.map((c) => c.replica)).size, crashes.length);
    } finally {
      sub.unsubscribe();
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('a replica that cannot start at all (missing working folder) is a crash with the reason', async () => {
    const t = await startTestOrchestrator();
    const crashes: ReplicaCrash[] = [];
    const sub = t.orch.crashes$().subscribe((c) => crashes.push(c));
    try {
      const spec = apiSpecFixture({ name: 'nostart', projectDir: '/nonexistent/myelin-test-project' });
      await t.orch.apply({ spec, revision: 'nostart000', replicas: 1 });
      const c = await waitFor('crash event', () => crashes[0]);
      assert.match(c.reason, /^could not start: .*ENOENT/);
      assert.equal(c.exitCode, null);
    } finally {
      sub.unsubscribe();
      await t.close();
    }
  });
});
