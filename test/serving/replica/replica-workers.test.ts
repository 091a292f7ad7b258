// The replica with predictor instances in worker threads (piscina), over real HTTP: one admission
// queue across workers, hung and blocked predictors, leaked rejections, worker logs, load failures.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PredictorError } from '../../../core/errors.js';
import { postJson, waitFor } from '../../harness/http-client.js';
import { startBehaviourReplica } from './replica-test-kit.js';

type Threaded = { thread: number };

describe('replica with worker threads', () => {
  test('two instances, one queue: a request never waits behind a busy worker while another is idle', async () => {
    await using t = await startBehaviourReplica({ predictor: { processesPerReplica: 2, threadsPerProcess: 1 } }, { sampleIntervalMs: 50 });
    await t.replica.ready;
    assert.equal(t.replica.executorMode, 'worker-threads');
    const gate = t.gate('a');
    const held = postJson(t.target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`);
    await waitFor('the first request running', () => t.replica.counts().inFlight === 1);
    // The second worker is idle: these run there, one after another, while the first stays held.
    const threads = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const r = await postJson(t.target, {}, '/predict?behave=thread');
      assert.equal(r.status, 200);
      threads.add((r.json() as Threaded).thread);
    }
    assert.equal(threads.size, 1, 'all on the idle worker');
    assert.equal(t.replica.counts().inFlight, 1, 'the held one is still in flight');
    // Both busy: the next one queues replica-wide, and runs on whichever worker frees first.
    const gate2 = t.gate('b');
    const held2 = postJson(t.target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate2)}`);
    await waitFor('two running', () => t.replica.counts().inFlight === 2);
    const queued = postJson(t.target, {}, '/predict?behave=thread');
    await waitFor('one queued', () => t.replica.counts().queued === 1);
    t.release('a');
    const [first, third] = await Promise.all([held, queued]);
    assert.equal((third.json() as Threaded).thread, (first.json() as Threaded).thread, 'the queued request took the worker that freed up');
    t.release('b');
    const second = await held2;
    assert.notEqual((second.json() as Threaded).thread, (first.json() as Threaded).thread);
  });

  test('threadsPerProcess predictions run at once in each worker', async () => {
    await using t = await startBehaviourReplica({ predictor: { processesPerReplica: 1, threadsPerProcess: 3 } }, { executor: 'worker-threads' });
    await t.replica.ready;
    const gate = t.gate('go');
    const held = [0, 1, 2].map(() => postJson(t.target, {}, `/predict?behave=waitfile&file=${encodeURIComponent(gate)}`));
    await waitFor('three running, none queued', () => t.replica.counts().inFlight === 3 && t.replica.counts().queued === 0);
    t.release('go');
    const threads = new Set((await Promise.all(held)).map((r) => (r.json() as Threaded).thread));
    assert.equal(threads.size, 1);
  });

  test('an async hang is answered 504 and the same worker takes the next request', async () => {
    await using t = await startBehaviourReplica({ predictor: { timeoutMs: 200 } }, { executor: 'worker-threads', hungWorkerGraceMs: 5000 });
    await t.replica.ready;
    const before = (await postJson(t.target, {}, '/predict?behave=thread')).json() as Threaded;
    const r = await postJson(t.target, {}, '/predict?behave=hang');
    assert.equal(r.status, 504);
    const after = await postJson(t.target, {}, '/predict?behave=thread');
    assert.equal(after.status, 200);
    assert.equal((after.json() as Threaded).thread, before.thread, 'not replaced: the slot came back');
  });

  test('a predictor that blocks its thread is answered 504; the worker is replaced and serving resumes', async () => {
    await using t = await startBehaviourReplica({ predictor: { timeoutMs: 200 } }, { executor: 'worker-threads', hungWorkerGraceMs: 200 });
    await t.replica.ready;
    const before = (await postJson(t.target, {}, '/predict?behave=thread')).json() as Threaded;
    const r = await postJson(t.target, {}, '/predict?behave=block');
    assert.equal(r.status, 504);
    const after = await postJson(t.target, {}, '/predict?behave=thread');
    assert.equal(after.status, 200, after.text);
    assert.notEqual((after.json() as Threaded).thread, before.thread, 'a new worker');
    assert.ok(t.log.lines().some((l) => l.msg === 'predictor worker blocked after a timeout; replacing it'));
  });

  test('a leaked rejection in a worker is logged; the worker keeps serving', async () => {
    await using t = await startBehaviourReplica({}, { executor: 'worker-threads' });
    await t.replica.ready;
    const first = await postJson(t.target, {}, '/predict?behave=leak');
    assert.equal(first.status, 200);
    await waitFor('the rejection logged', () => t.log.lines().some((l) => l.msg === 'unhandled promise rejection in predictor code (ignored)'));
    const a = (await postJson(t.target, {}, '/predict?behave=thread')).json() as Threaded;
    const b = (await postJson(t.target, {}, '/predict?behave=thread')).json() as Threaded;
    assert.equal(a.thread, b.thread);
  });

  test('errors, HttpError, debug stages and postPredict work across the thread boundary; worker logs reach the replica log', async () => {
    await using t = await startBehaviourReplica({}, { executor: 'worker-threads' });
    await t.replica.ready;
    const thrown = await postJson(t.target, {}, '/predict?behave=throw');
    assert.equal(thrown.status, 500);
    const id = thrown.headers['x-request-id'];
    assert.match(JSON.stringify(t.log.lines().find((l) => l.requestId === id && l.level === 50)), /secret detail that must stay in the log/);
    const http = await postJson(t.target, {}, '/predict?behave=http-error');
    assert.deepEqual([http.status, http.headers['x-why']], [422, 'shape']);
    const bytes = await postJson(t.target, {}, '/predict?behave=bytes');
    assert.deepEqual([bytes.headers['content-type'], [...bytes.body]], ['application/octet-stream', [0, 1, 2, 255]]);
    const dbg = await postJson(t.target, { y: 2 }, '/predict?behave=string&debug=true');
    const dbgId = dbg.headers['x-request-id'];
    await waitFor('both debug stages', () => t.log.lines().filter((l) => l.requestId === dbgId && l.msg === 'debug stage').length === 2);
    const stages = t.log.lines().filter((l) => l.requestId === dbgId && l.msg === 'debug stage');
    assert.deepEqual(stages.map((l) => l.stage).sort(), ['inference', 'raw sample']);
    assert.equal(typeof stages.find((l) => l.stage === 'inference')?.thread, 'number', 'the inference stage was logged in the worker');
    await waitFor('postPredict in the worker', () => t.log.lines().some((l) => l.msg === 'postPredict ran' && typeof l.thread === 'number'));
  });

  test('a predictor that fails to load in a worker rejects ready with the load error', async () => {
    let fatal: Error | undefined;
    await using t = await startBehaviourReplica(
      { predictor: { config: { failInit: true } } },
      { executor: 'worker-threads', onFatal: (e) => (fatal = e) },
    );
    await assert.rejects(t.replica.ready, (e: unknown) => e instanceof PredictorError && /init failed on purpose/.test(e.message));
    assert.ok(fatal);
    assert.equal(t.replica.state(), 'failed');
  });

  test('close() closes every instance in its worker', async () => {
    const t = await startBehaviourReplica({ predictor: { processesPerReplica: 2 } });
    await t.replica.ready;
    await t[Symbol.asyncDispose]();
    const closed = t.log.lines().filter((l) => l.msg === 'predictor closed');
    assert.equal(new Set(closed.map((l) => l.thread)).size, 2);
  });
});
