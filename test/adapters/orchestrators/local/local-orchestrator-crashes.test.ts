import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { crashedReplicas, latest, ofApi, pidAlive, replacementDelaysMs, replicaRequest, startTestOrchestrator, waitFor } from '../../../harness/local-orchestrator-harness.js';

describe('LocalOrchestrator crash handling (real child processes)', () => {
  test('kill -9 of a replica: crashed event, replaced after a backoff that doubles per crash', async () => {
    const t = await startTestOrchestrator();
    try {
      await t.orch.apply({ spec: apiSpecFixture({ name: 'kill' }), revision: 'kill000000', replicas: 2 });
      const ready = await waitFor('2 ready', () => ofApi(latest(t), 'kill', 'ready').length === 2 && ofApi(latest(t), 'kill', 'ready'));
      const victim = ready[0];
      process.kill(victim.pid!, 'SIGKILL');

      const first = await waitFor('crashed in replicas$', () => crashedReplicas(t, 'kill')[0]);
      assert.deepEqual(
        { id: first.id, revision: first.revision, exitCode: first.exitCode, signal: first.signal, pid: first.pid },
        { id: victim.id, revision: 'kill000000', exitCode: null, signal: 'SIGKILL', pid: victim.pid },
      );
      // A bare signal says little: the reason carries the replica's last output.
      assert.match(first.crashReason ?? '', /^killed by SIGKILL; last output:\n/);
      assert.ok(first.crashReason?.includes(`fake replica ${victim.id} starting (pid ${victim.pid})`), first.crashReason);
      assert.deepEqual(replacementDelaysMs(t, 'kill'), [100]);
      assert.equal(t.orch.status('kill')?.failed, 1);
      assert.ok(t.orch.status('kill')?.lastLogLines.includes(`fake replica ${victim.id} starting (pid ${victim.pid})`));

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
      const second = await waitFor('second crash in replicas$', () => crashedReplicas(t, 'kill')[1]);
      assert.equal(second.id, replacement.id);
      assert.equal(second.exitCode, 1);
      assert.equal(second.signal, null);
      // replicas$ (what the daemon's replica.crashed event carries) says why, not only the exit code.
      assert.match(second.crashReason ?? '', new RegExp(`^exit code 1; last output:\\n[^]*fake replica ${replacement.id}: told to crash`));
      assert.ok((second.crashReason ?? '').length <= 2049);
      assert.deepEqual(replacementDelaysMs(t, 'kill'), [100, 200]);

      await waitFor('2 ready after second crash', () => ofApi(latest(t), 'kill', 'ready').length === 2);
      const s = t.orch.status('kill')!;
      assert.equal(s.failed, 2);
      assert.equal(s.crashLooping, false);
      assert.equal(s.upToDate, 2);
      assert.ok(s.lastLogLines.includes(`fake replica ${replacement.id}: told to crash`));
      assert.equal(s.message, undefined);
    } finally {
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('a replica that crashes on start crash-loops: status says so with its last log lines', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'loop', predictor: { env: { FAKE_CRASH_ON_START: '1', FAKE_EXIT_CODE: '3' } } });
      await t.orch.apply({ spec, revision: 'loop000000', replicas: 1 });
      const s = await waitFor('crash loop', () => t.orch.status('loop')?.crashLooping && t.orch.status('loop'));
      assert.equal(s.upToDate, 0);
      assert.ok(s.failed >= 3);
      assert.match(s.message ?? '', /^replicas keep crashing \(\d+ crashes in 1m, last: exit code 3\)$/);
      const crashes = crashedReplicas(t, 'loop');
      const last = crashes[crashes.length - 1];
      assert.ok(s.lastLogLines.includes(`Error: predictor failed to load in ${last.id}`), s.lastLogLines.join('\n'));
      assert.ok(s.lastLogLines.includes(`fake replica ${last.id}: loading predictor`));
      // The backoff doubles per crash in the window (base 100 ms).
      assert.deepEqual(replacementDelaysMs(t, 'loop').slice(0, 3), [100, 200, 400]);
      assert.ok(crashes.every((c) => c.exitCode === 3 && c.signal === null));
      // Each crash is a new process, replaced under a new id.
      assert.equal(new Set(crashes.map((c) => c.pid)).size, crashes.length);
    } finally {
      await t.close();
    }
    for (const pid of t.pids) assert.equal(pidAlive(pid), false, `pid ${pid} still running`);
  });

  test('a replica that cannot start at all (missing working folder) is a crash with the reason', async () => {
    const t = await startTestOrchestrator();
    try {
      const spec = apiSpecFixture({ name: 'nostart', projectDir: '/nonexistent/myelin-test-project' });
      await t.orch.apply({ spec, revision: 'nostart000', replicas: 1 });
      const c = await waitFor('crashed in replicas$', () => crashedReplicas(t, 'nostart')[0]);
      assert.match(c.crashReason ?? '', /^could not start: .*ENOENT/);
      assert.equal(c.exitCode, null);
    } finally {
      await t.close();
    }
  });
});
