/**
 * The contract every OrchestratorTarget kind passes (SG 5.2): what the daemon relies on when it
 * deploys, scales, rolls out and removes APIs through `core/ports/orchestrator-target.ts`. A fixture
 * gives a started target plus the few things only its environment can do: make a replica crash (and
 * come back where the target does not restart it itself), and say what is still running.
 *
 * Every wait is a deadline, never a measurement: the tests poll the replica lists the target emitted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { OrchestratorError } from '../../core/errors.js';
import type { ApiDeployment, OrchestratorTarget, ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../harness/api-spec-fixture.js';

export interface OrchestratorTargetFixture extends AsyncDisposable {
  /** Started. Disposing the fixture closes it (a second close is fine) and frees its environment. */
  readonly target: OrchestratorTarget;
  /**
   * Replicas of `api` (every API when left out) that still run in the target's environment, one
   * line each (a live PID, a pod, terminating ones included).
   */
  running(api?: string): Promise<string[]>;
  /** `running`, plus whatever else the target keeps for `api` (a Deployment, a Service); empty once nothing is left. */
  leftovers(api?: string): Promise<string[]>;
  /**
   * Makes a replica end unexpectedly the way this kind's replicas can (kill -9 of the process, a
   * container in CrashLoopBackOff). Resolves with fields the `crashed` entry in `replicas$` must have
   * (a field set to undefined must be absent).
   */
  crash(replica: ReplicaInfo): Promise<Partial<ReplicaInfo>>;
  /** Does what the environment does to bring a crashed replica back when the target does not (a kubelet restarting the container); else nothing. */
  restartCrashed(replica: ReplicaInfo): Promise<void>;
}

/** How long a test waits for a state before it fails (a deadline, not a measurement). */
const DEADLINE_MS = 20_000;

/** Polls `check` every 20 ms until it returns a value other than undefined/false; fails after the deadline with `what`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** Every list `replicas$` emitted since `record`, and whether it completed. */
interface Recording {
  readonly lists: (readonly ReplicaInfo[])[];
  completed: boolean;
  latest(): readonly ReplicaInfo[];
  of(api: string, state?: ReplicaInfo['state']): ReplicaInfo[];
  stop(): void;
}

function record(target: OrchestratorTarget): Recording {
  const rec: Recording = {
    lists: [],
    completed: false,
    latest: () => rec.lists[rec.lists.length - 1] ?? [],
    of: (api, state) => rec.latest().filter((r) => r.api === api && (state === undefined || r.state === state)),
    stop: () => sub.unsubscribe(),
  };
  const sub = target.replicas$().subscribe({ next: (l) => rec.lists.push(l), complete: () => (rec.completed = true) });
  return rec;
}

/** The API's replicas once exactly `n` exist and all are ready on `revision`. */
function allReady(rec: Recording, api: string, revision: string, n: number): Promise<ReplicaInfo[]> {
  return until(`${n} ready replicas of ${api} on ${revision} (last: ${JSON.stringify(rec.of(api).map((r) => `${r.id}:${r.revision}:${r.state}`))})`, () => {
    const mine = rec.of(api);
    return mine.length === n && mine.every((r) => r.state === 'ready' && r.revision === revision) && mine;
  });
}

function deployment(name: string, revision: string, replicas: number, overrides: ApiSpecOverrides = {}): ApiDeployment {
  return { spec: apiSpecFixture({ name, ...overrides }), revision, replicas };
}

const isOrchestratorError = (e: unknown): boolean => e instanceof OrchestratorError;
const ids = (rs: readonly ReplicaInfo[]): string[] => rs.map((r) => r.id).sort();

/** Revisions as the daemon makes them (hex); local replica ids carry their first 8 characters. */
const R1 = 'aaaa1111aa';
const R2 = 'bbbb2222bb';

export function describeOrchestratorTargetContract(name: string, create: () => Promise<OrchestratorTargetFixture>): void {
  describe(`OrchestratorTarget contract: ${name}`, () => {
    test('apply starts N replicas of the revision; replicas$ and status show them ready', async () => {
      await using f = await create();
      const rec = record(f.target);
      await f.target.apply(deployment('iris', R1, 2));
      const ready = await allReady(rec, 'iris', R1, 2);
      assert.equal(new Set(ready.map((r) => r.id)).size, 2, 'distinct replica ids');
      for (const r of ready) {
        assert.equal(r.api, 'iris');
        assert.ok(r.address, `${r.id} has an address`);
        assert.equal(typeof r.createdAt, 'number');
        assert.ok(r.readyAt !== undefined && r.readyAt >= r.createdAt, `${r.id}: readyAt ${r.readyAt} >= createdAt ${r.createdAt}`);
      }
      // On the way to ready a replica is only ever pending or starting.
      const seen = new Set(rec.lists.flatMap((l) => l.filter((r) => r.api === 'iris').map((r) => r.state)));
      assert.deepEqual([...seen].filter((s) => !['pending', 'starting', 'ready'].includes(s)), []);
      const s = f.target.status('iris');
      assert.deepEqual(s, {
        api: 'iris',
        revision: R1,
        requested: 2,
        upToDate: 2,
        stale: 0,
        pending: 0,
        starting: 0,
        failed: 0,
        crashLooping: false,
        computeUnavailable: false,
        lastLogLines: [],
      });
      assert.equal(f.target.status('never-deployed'), undefined);
      // replicas$ replays the latest list to a new subscriber, at once.
      let replayed: readonly ReplicaInfo[] | undefined;
      f.target.replicas$().subscribe((l) => (replayed ??= l)).unsubscribe();
      assert.deepEqual(replayed, rec.latest());
      rec.stop();
    });

    test('apply and scale refuse a replica count that is not an integer >= 0', async () => {
      await using f = await create();
      await assert.rejects(f.target.apply(deployment('iris', R1, -1)), isOrchestratorError);
      await f.target.apply(deployment('iris', R1, 1));
      await assert.rejects(f.target.scale('iris', -1), isOrchestratorError);
      await assert.rejects(f.target.scale('iris', 1.5), isOrchestratorError);
      await assert.rejects(f.target.scale('never-deployed', 1), isOrchestratorError);
    });

    test('apply again with the same revision is idempotent: the running replicas stay, none restarts', async () => {
      await using f = await create();
      const rec = record(f.target);
      await f.target.apply(deployment('keep', R1, 2));
      const first = await allReady(rec, 'keep', R1, 2);
      await f.target.apply(deployment('keep', R1, 2));
      // Autoscaling and networking changes keep the revision: still no restart.
      await f.target.apply(deployment('keep', R1, 2, { autoscaling: { maxReplicas: 7, targetReplicaConcurrency: 3 } }));
      const again = await allReady(rec, 'keep', R1, 2);
      assert.deepEqual(ids(again), ids(first), 'the same replicas');
      for (const r of first) assert.equal(again.find((x) => x.id === r.id)?.pid, r.pid, `${r.id}: same process`);
      const stopped = rec.lists.flatMap((l) => l.filter((r) => r.api === 'keep' && r.state !== 'pending' && r.state !== 'starting' && r.state !== 'ready'));
      assert.deepEqual(stopped, [], 'nothing was stopped or crashed');
      assert.equal(f.target.status('keep')?.requested, 2);
      rec.stop();
    });

    test('scale adds replicas without restarting the running ones, and removes replicas down to N (0 included)', async () => {
      await using f = await create();
      const rec = record(f.target);
      await f.target.apply(deployment('sc', R1, 1));
      const [one] = await allReady(rec, 'sc', R1, 1);
      await f.target.scale('sc', 3);
      assert.equal(f.target.status('sc')?.requested, 3);
      const three = await allReady(rec, 'sc', R1, 3);
      const kept = three.find((r) => r.id === one.id);
      assert.ok(kept, 'the first replica still runs');
      assert.equal(kept.pid, one.pid);
      assert.deepEqual(f.target.status('sc') && { ...f.target.status('sc'), message: undefined }, {
        api: 'sc',
        revision: R1,
        requested: 3,
        upToDate: 3,
        stale: 0,
        pending: 0,
        starting: 0,
        failed: 0,
        crashLooping: false,
        computeUnavailable: false,
        lastLogLines: [],
        message: undefined,
      });

      await f.target.scale('sc', 1);
      assert.equal(f.target.status('sc')?.requested, 1);
      const [left] = await allReady(rec, 'sc', R1, 1);
      assert.ok(ids(three).includes(left.id), 'a replica that already ran is kept');
      await until('only one replica of sc left running', async () => (await f.running('sc')).length === 1);

      await f.target.scale('sc', 0);
      await until('no replica of sc', () => rec.of('sc').length === 0);
      const s = f.target.status('sc');
      assert.ok(s, 'scaled to 0, the API is still deployed');
      assert.deepEqual({ requested: s.requested, upToDate: s.upToDate, revision: s.revision }, { requested: 0, upToDate: 0, revision: R1 });
      rec.stop();
    });

    test('a new revision rolls out within the update strategy and ends with only the new revision', async () => {
      await using f = await create();
      const rec = record(f.target);
      const strategy: ApiSpecOverrides = { updateStrategy: { maxSurge: { kind: 'absolute', value: 1 }, maxUnavailable: { kind: 'absolute', value: 0 } } };
      await f.target.apply(deployment('roll', R1, 2, strategy));
      const old = await allReady(rec, 'roll', R1, 2);
      const from = rec.lists.length;
      await f.target.apply(deployment('roll', R2, 2, { ...strategy, predictor: { config: { threshold: 0.5 } } }));
      assert.equal(f.target.status('roll')?.revision, R2, 'status follows the new revision at once');
      const now = await allReady(rec, 'roll', R2, 2);
      assert.deepEqual(ids(now).filter((id) => ids(old).includes(id)), [], 'new replicas, not the old ones');
      // max_unavailable 0: at every step of the rollout at least 2 replicas were ready.
      for (const l of rec.lists.slice(from)) {
        const ready = l.filter((r) => r.api === 'roll' && r.state === 'ready');
        assert.ok(ready.length >= 2, `only ${ready.length} ready during the rollout: ${JSON.stringify(ready.map((r) => r.id))}`);
      }
      assert.ok(
        rec.lists.slice(from).some((l) => l.some((r) => r.api === 'roll' && r.revision === R1 && r.state === 'ready') && l.some((r) => r.api === 'roll' && r.revision === R2)),
        'old and new replicas ran side by side (a rolling update, not a recreate)',
      );
      const s = await until('status: 2 up to date, 0 stale', () => {
        const st = f.target.status('roll');
        return st?.upToDate === 2 && st.stale === 0 && st;
      });
      assert.deepEqual({ revision: s.revision, requested: s.requested, pending: s.pending, starting: s.starting }, { revision: R2, requested: 2, pending: 0, starting: 0 });
      await until('only the 2 replicas of the new revision left running', async () => (await f.running('roll')).length === 2);
      rec.stop();
    });

    test('remove stops and forgets every replica of the API, and only of that API', async () => {
      await using f = await create();
      const rec = record(f.target);
      await f.target.apply(deployment('gone', R1, 2));
      await f.target.apply(deployment('stays', R1, 1));
      await allReady(rec, 'gone', R1, 2);
      const [stays] = await allReady(rec, 'stays', R1, 1);
      await f.target.remove('gone');
      assert.equal(f.target.status('gone'), undefined, 'forgotten once remove resolved');
      await until('no replica of gone in replicas$', () => rec.of('gone').length === 0);
      await until('nothing of gone left running', async () => (await f.leftovers('gone')).length === 0);
      assert.deepEqual(ids(rec.of('stays', 'ready')), [stays.id], 'the other API is untouched');
      assert.equal(f.target.status('stays')?.upToDate, 1);
      assert.equal((await f.running('stays')).length, 1);
      await f.target.remove('gone'); // already removed
      await f.target.remove('never-deployed');
      rec.stop();
    });

    test('a replica that ends unexpectedly is reported crashed in replicas$ and status, and the API gets back to N ready', async () => {
      // replicas$ and status() are the one source of crashes for every target (the daemon's
      // replica.crashed events and crash-loop status come from them alone).
      await using f = await create();
      const rec = record(f.target);
      await f.target.apply(deployment('crash', R1, 2));
      const [victim, other] = await allReady(rec, 'crash', R1, 2);
      const want = await f.crash(victim);
      const crashed = await until(`${victim.id} crashed in replicas$`, () =>
        rec.lists.flatMap((l) => l).find((r) => r.id === victim.id && r.state === 'crashed'),
      );
      assert.equal(crashed.revision, R1);
      for (const [k, v] of Object.entries(want)) assert.deepEqual((crashed as unknown as Record<string, unknown>)[k], v, `crashed entry: ${k}`);
      assert.ok((f.target.status('crash')?.failed ?? 0) >= 1, 'status counts the crash as failed');
      assert.ok(rec.of('crash').some((r) => r.id === other.id && r.state === 'ready'), 'the other replica kept serving');
      await f.restartCrashed(victim);
      await allReady(rec, 'crash', R1, 2);
      const s = await until('status: 2 up to date, not crash-looping', () => {
        const st = f.target.status('crash');
        return st?.upToDate === 2 && !st.crashLooping && st;
      });
      assert.equal(s.requested, 2);
      rec.stop();
    });

    test('impossibleCompute names the compute no replica can ever get (compute.<field> problems), or the target accepts it and waits', async () => {
      await using f = await create();
      const huge: ApiSpec = apiSpecFixture({ name: 'huge', compute: { cpuMillis: 10_000_000, gpu: 1000 } });
      if (!f.target.impossibleCompute) {
        // Allowed by the port for a target that cannot know what can never be placed (a cluster may grow):
        // the deployment is accepted as asked, and placing it is left to the target's scheduler.
        await f.target.apply({ spec: huge, revision: R1, replicas: 1 });
        const st = f.target.status('huge');
        assert.ok(st, `${name} accepted the deployment`);
        assert.equal(st.requested, 1);
        return;
      }
      const fits: ApiSpec = apiSpecFixture({ name: 'fits', compute: { cpuMillis: 100 } });
      assert.deepEqual(f.target.impossibleCompute(fits), []);
      const problems = f.target.impossibleCompute(huge);
      assert.deepEqual(problems.map((p) => p.field).sort(), ['compute.cpu', 'compute.gpu']);
      for (const p of problems) assert.ok(p.message.length > 0, `${p.field} has a message`);
    });

    test('close() stops every replica it started, completes replicas$, can be called again, and refuses apply and scale after', async () => {
      const f = await create();
      try {
        const rec = record(f.target);
        await f.target.apply(deployment('a', R1, 2));
        await f.target.apply(deployment('b', R1, 1));
        await allReady(rec, 'a', R1, 2);
        await allReady(rec, 'b', R1, 1);
        assert.equal((await f.running()).length, 3);
        await f.target.close();
        assert.equal(rec.completed, true, 'replicas$ completed');
        await until('nothing left running after close()', async () => (await f.leftovers()).length === 0);
        await f.target.close();
        await assert.rejects(f.target.apply(deployment('late', R1, 1)), isOrchestratorError);
        await assert.rejects(f.target.scale('a', 1), isOrchestratorError);
      } finally {
        await f[Symbol.asyncDispose]();
      }
    });
  });
}
