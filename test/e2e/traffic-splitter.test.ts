// kind: TrafficSplitter on a real daemon (in this process, runDaemon) with real replicas of a small
// TypeScript predictor (issue 14, part 2): exact SWRR shares over 1000 requests, a backend leaving the
// ready set mid-run (every later request goes to the other, none fails), deploy in one file and
// separately (a `splitter.weights` event per change), `myelin get` data with the share each backend
// got, validation errors with file:line:field, and deleting a backend refused with 409.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, type ConfigProblem } from '../../core/errors.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { Writable } from 'node:stream';
import { OrchestratorTarget } from '../../core/ports/orchestrator-target.js';
import { get } from '../../serving/cli/commands/get.js';
import type { TrafficSplitterView } from '../../serving/daemon/traffic-splitters.js';
import { Gateway } from '../../serving/gateway/gateway.js';
import { removeDir, waitFor } from './e2e-harness.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process-daemon.js';

const api = (name: string, version: string): string => `- name: ${name}
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      version: ${version}
  compute:
    cpu: 100m
`;

const splitter = (a: number, b: number, extra = ''): string => `- name: split
  kind: TrafficSplitter
  apis:
    - name: back-a
      weight: ${a}
    - name: back-b
      weight: ${b}
  networking:
    endpoint: /canary
${extra}`;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe('TrafficSplitter on a real daemon', () => {
  let d: InProcessDaemon;
  let gateway: Gateway;
  let orchestrator: OrchestratorTarget;
  let splitUrl: string;
  const events: EngineEvent[] = [];

  const control = async (method: string, path: string): Promise<{ status: number; body: any }> => {
    const r = await fetch(`${d.running.controlUrl}${path}`, { method, headers: { authorization: `Bearer ${d.running.token}`, 'content-type': 'application/json' } });
    return { status: r.status, body: await r.json() };
  };

  /** Sends `n` POSTs to the splitter, `concurrency` at a time; the version that answered each, or `failed <status>`. */
  const load = async (n: number, concurrency: number, onStart?: () => boolean): Promise<{ versions: string[]; afterFlag: string[] }> => {
    const versions: string[] = [];
    const afterFlag: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const flagged = onStart?.() ?? false;
          const r = await fetch(splitUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
          const got = r.status === 200 ? ((await r.json()) as { version: string }).version : `failed ${r.status} ${await r.text()}`;
          versions.push(got);
          if (flagged) afterFlag.push(got);
        }
      }),
    );
    return { versions, afterFlag };
  };
  const count = (vs: readonly string[]): Record<string, number> => vs.reduce<Record<string, number>>((m, v) => ({ ...m, [v]: (m[v] ?? 0) + 1 }), {});

  before(async () => {
    d = await startInProcessDaemon();
    gateway = d.running.container.get(Gateway);
    orchestrator = d.running.container.get<OrchestratorTarget>(OrchestratorTarget);
    d.running.daemon.events$({}).subscribe((e) => events.push(e));
  });
  after(async () => {
    await d?.close();
    if (d) await removeDir(d.dir);
  });

  test('deployed in one file with its APIs: 1000 requests split exactly 300/700 (SWRR), and `get` shows the shares', async () => {
    await d.deploy(api('back-a', 'a') + api('back-b', 'b') + splitter(30, 70));
    await waitFor('both backends ready at the gateway', 60_000, () => gateway.upstreams('back-a').length > 0 && gateway.upstreams('back-b').length > 0);
    const view = (await d.running.daemon.getSplitter('split')) as TrafficSplitterView;
    splitUrl = view.url;
    assert.match(splitUrl, /\/canary$/);
    const { versions } = await load(1000, 8);
    assert.deepEqual(count(versions), { a: 300, b: 700 }, 'exact counts: SWRR over whole cycles of 100');

    const got = await control('GET', '/v1/apis/split');
    assert.equal(got.status, 200);
    assert.equal(got.body.kind, 'TrafficSplitter');
    assert.equal(got.body.status, 'live');
    assert.equal(got.body.requests, 1000);
    assert.deepEqual(
      got.body.apis.map((b: { name: string; weight: number; requests: number; share: number; ready: boolean; status: string }) => [b.name, b.weight, b.requests, b.share, b.ready, b.status]),
      [
        ['back-a', 30, 300, 0.3, true, 'live'],
        ['back-b', 70, 700, 0.7, true, 'live'],
      ],
    );
    const list = await control('GET', '/v1/apis');
    assert.deepEqual(list.body.splitters.map((s: TrafficSplitterView) => s.name), ['split']);
    assert.deepEqual(list.body.apis.map((a: { name: string }) => a.name), ['back-a', 'back-b'], 'the APIs list stays APIs only');
    // `myelin get` (the CLI's command on the client): the splitter below the APIs, then its own view with the shares.
    const table = new Capture();
    await get({ url: d.running.controlUrl, token: d.running.token, output: 'table', watch: false, stdout: table });
    assert.match(table.text, /^traffic splitter\s+status\s+apis\s+last update\s+requests\nsplit\s+live\s+back-a:30 back-b:70\s+\S+\s+1000$/m);
    const one = new Capture();
    await get({ url: d.running.controlUrl, token: d.running.token, api: 'split', output: 'table', watch: false, stdout: one });
    assert.match(one.text, /^back-a\s+30%\s+live\s+yes\s+300\s+30\.0%$/m);
    assert.match(one.text, /^back-b\s+70%\s+live\s+yes\s+700\s+70\.0%$/m);
    assert.match(one.text, /endpoint: http:\/\/127\.0\.0\.1:\d+\/canary/);
    const json = new Capture();
    await get({ url: d.running.controlUrl, token: d.running.token, output: 'json', watch: false, stdout: json });
    assert.deepEqual((JSON.parse(json.text) as { name: string; kind?: string }[]).map((x) => [x.name, x.kind ?? 'RealtimeAPI']), [['back-a', 'RealtimeAPI'], ['back-b', 'RealtimeAPI'], ['split', 'TrafficSplitter']]);
    const created = events.filter((e) => e.type === 'splitter.weights');
    assert.equal(created.length, 1);
    assert.deepEqual((created[0] as unknown as { previous: unknown; weights: unknown }).previous, null);
  });

  test('deployed separately (a file with the splitter only): new weights take effect, one splitter.weights event with the previous ones', async () => {
    await d.deploy(splitter(50, 50));
    const { versions } = await load(200, 4);
    const c = count(versions);
    // The rotation state starts anew with the new weights: 100 each over two whole cycles.
    assert.deepEqual(c, { a: 100, b: 100 });
    const changes = events.filter((e) => e.type === 'splitter.weights');
    assert.equal(changes.length, 2);
    const last = changes[1] as unknown as { api: string; weights: unknown; previous: unknown; endpoint: string };
    assert.equal(last.api, 'split');
    assert.equal(last.endpoint, '/canary');
    assert.deepEqual(last.weights, [{ name: 'back-a', weight: 50 }, { name: 'back-b', weight: 50 }]);
    assert.deepEqual(last.previous, [{ name: 'back-a', weight: 30 }, { name: 'back-b', weight: 70 }]);
    // The same file again changes nothing: no event, `up to date`.
    const before = events.length;
    await d.deploy(splitter(50, 50));
    assert.equal(events.slice(before).filter((e) => e.type === 'splitter.weights').length, 0);
  });

  test('a backend leaving the ready set mid-run: every request from then on goes to the ready one, none fails', async () => {
    let gone = false;
    let started = 0;
    const run = load(600, 6, () => {
      started++;
      return gone;
    });
    await waitFor('the load under way', 30_000, () => started >= 100);
    // Scaled to 0 by the orchestrator: the replica leaves the ready set before it stops (it drains).
    await orchestrator.scale('back-a', 0);
    await waitFor('back-a out of the gateway', 10_000, () => gateway.upstreams('back-a').length === 0);
    gone = true;
    const { versions, afterFlag } = await run;
    assert.deepEqual(versions.filter((v) => v.startsWith('failed')), [], 'no request failed');
    assert.ok(afterFlag.length >= 100, `requests started after back-a left: ${afterFlag.length}`);
    assert.deepEqual(count(afterFlag), { b: afterFlag.length }, 'all of them went to back-b');
    const view = (await d.running.daemon.getSplitter('split')) as TrafficSplitterView;
    assert.deepEqual(view.apis.map((b) => [b.name, b.ready]), [['back-a', false], ['back-b', true]]);
    // Back in service: both take requests again.
    await orchestrator.scale('back-a', 1);
    await waitFor('back-a ready again', 60_000, () => gateway.upstreams('back-a').length > 0);
    const again = count((await load(100, 4)).versions);
    assert.ok((again.a ?? 0) > 0 && (again.b ?? 0) > 0, JSON.stringify(again));
  });

  test('deleting a backend a splitter uses is refused with 409 and the reason; the splitter, then the backend, delete', async () => {
    const refused = await control('DELETE', '/v1/apis/back-a');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'ENG_CONFLICT');
    assert.match(refused.body.error, /^cannot delete back-a: it is used by TrafficSplitter split/);
    assert.ok(await d.running.daemon.get('back-a'), 'still deployed');
    const ok = await control('DELETE', '/v1/apis/split');
    assert.equal(ok.status, 200);
    const r = await fetch(splitUrl, { method: 'POST', body: '{}' });
    assert.equal(r.status, 404, 'the endpoint is gone');
    await r.arrayBuffer();
    assert.equal((await control('DELETE', '/v1/apis/back-a')).status, 200);
    assert.ok(events.some((e) => e.type === 'api.deleted' && e.api === 'split'));
  });

  test('validation: file:line:field for an unknown API, the weights, and name or endpoint clashes', async () => {
    const problemsOf = async (yaml: string): Promise<ConfigProblem[]> => {
      try {
        await d.deploy(yaml);
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return [...err.problems];
      }
      assert.fail('the deploy was accepted');
    };
    const brief = (ps: ConfigProblem[]): string[] => ps.filter((p) => p.severity === 'error').map((p) => `${basename(p.file)}:${p.line}:${p.field}: ${p.message}`);

    // back-a was deleted above; back-b is deployed.
    assert.deepEqual(brief(await problemsOf(splitter(30, 70))), ['myelin.yaml:4:apis[0].name: api back-a was not found or is not a RealtimeAPI (it is neither a RealtimeAPI of this file nor a deployed one)']);
    assert.deepEqual(brief(await problemsOf(splitter(30, 60))), ['myelin.yaml:3:apis: expected weights to sum to 100 but found 90']);
    // A splitter named like a deployed RealtimeAPI, and one on another API's endpoint.
    const clash = `${api('back-c', 'c')}- name: back-b
  kind: TrafficSplitter
  apis:
    - name: back-c
      weight: 100
  networking:
    endpoint: /first
- name: other
  kind: TrafficSplitter
  apis:
    - name: back-c
      weight: 100
  networking:
    endpoint: /back-b
`;
    assert.deepEqual(brief(await problemsOf(clash)), [
      'myelin.yaml:10:name: back-b is deployed as a RealtimeAPI; delete it before deploying a TrafficSplitter of that name',
      'myelin.yaml:23:networking.endpoint: endpoint is already being used by back-b',
    ]);
    // Nothing of a refused file was deployed.
    assert.equal(await d.running.daemon.getSplitter('other'), undefined);
    await assert.rejects(d.running.daemon.get('back-c'), /not deployed/);
  });
});

describe('TrafficSplitter across a daemon restart', () => {
  let first: InProcessDaemon | undefined;
  let second: InProcessDaemon | undefined;
  after(async () => {
    await first?.close().catch(() => undefined);
    await second?.close();
    if (first) await removeDir(first.dir);
  });

  test('the splitter is stored and routed again after a restart, with its weights', async () => {
    first = await startInProcessDaemon();
    await first.deploy(api('back-a', 'a') + api('back-b', 'b') + splitter(20, 80));
    await first.close();
    second = await startInProcessDaemon({ dir: first.dir, stateDir: first.stateDir });
    const gw = second.running.container.get(Gateway);
    await waitFor('both backends ready again', 60_000, () => gw.upstreams('back-a').length > 0 && gw.upstreams('back-b').length > 0);
    const view = (await second.running.daemon.getSplitter('split')) as TrafficSplitterView;
    assert.deepEqual(view.apis.map((b) => [b.name, b.weight]), [['back-a', 20], ['back-b', 80]]);
    const got: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const r = await fetch(view.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(r.status, 200);
      const v = ((await r.json()) as { version: string }).version;
      got[v] = (got[v] ?? 0) + 1;
    }
    assert.deepEqual(got, { a: 20, b: 80 });
  });
});
