// Direct connections (docs/gateway.md) on a real daemon in this process (runDaemon with
// directConnections) and real replica processes: the gateway hands a client's keep-alive connection to
// a replica over its IPC channel, and the replica serves every request on it as the gateway would —
// the API's own routes itself, any other path back through the gateway — counts them in the gateway's
// stats, lets its connections go without failing a request in a rolling update, and sheds a share of
// them when a replica joins, so the newcomer takes load from clients that never reconnect on their own.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Gateway } from '../../serving/gateway/gateway.js';
import { removeDir, waitFor } from './e2e-harness.js';
import { startInProcessDaemon, type InProcessDaemon } from './in-process-daemon.js';

const api = (name: string, version: string, extra = ''): string => `- name: ${name}
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      version: ${version}
  compute:
    cpu: 100m
${extra}`;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The client's local port: the same one means the same connection. */
  readonly localPort: number;
  readonly reused: boolean;
}

function call(agent: Agent, url: URL, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, agent, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, localPort: req.socket?.localPort ?? -1, reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('direct connections on a real daemon', () => {
  let d: InProcessDaemon;
  let gateway: Gateway;
  let base: URL;

  before(async () => {
    d = await startInProcessDaemon({ daemon: { directConnections: true } });
    gateway = d.running.container.get(Gateway);
    await d.deploy(api('direct-a', 'a') + api('direct-b', 'b'));
    await waitFor('both APIs ready at the gateway', 60_000, () => gateway.upstreams('direct-a').length > 0 && gateway.upstreams('direct-b').length > 0);
    base = new URL(await d.url('direct-a'));
  });
  after(async () => {
    await d?.close();
    if (d) await removeDir(d.dir);
  });

  test('one keep-alive connection: handed to the replica, every route answered as through the gateway, counted in its stats', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const countBefore = gateway.stats('direct-a')!.count;
      const first = await call(agent, base, 'POST', '/direct-a', '{}');
      assert.equal(first.status, 200, first.body);
      assert.equal(JSON.parse(first.body).version, 'a');
      const [up] = gateway.upstreams('direct-a');
      assert.equal(up.direct, 1, 'the connection was handed to the replica');
      assert.equal(up.outstanding, 0, 'and the gateway forwarded nothing');
      const answers: Answer[] = [first];
      for (let i = 0; i < 20; i++) answers.push(await call(agent, base, 'POST', '/direct-a?debug=true', '{"x":1}'));
      assert.ok(answers.every((a) => a.status === 200 && JSON.parse(a.body).version === 'a'));
      assert.ok(answers.slice(1).every((a) => a.reused && a.localPort === first.localPort), 'one connection throughout');
      assert.ok(answers.every((a) => typeof a.headers['x-request-id'] === 'string'), 'every answer has a request id');

      const summary = await call(agent, base, 'GET', '/direct-a');
      assert.equal(summary.status, 200);
      assert.match(JSON.parse(summary.body).message, /make a prediction/);
      const preflight = await call(agent, base, 'OPTIONS', '/direct-a');
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], '*');
      const put = await call(agent, base, 'PUT', '/direct-a', '{}');
      assert.equal(put.status, 405);
      assert.match(String(put.headers.allow), /POST/);
      const bad = await call(agent, base, 'POST', '/direct-a', '{"x":');
      assert.equal(bad.status, 400, 'a malformed body is a 400');
      const userError = await call(agent, base, 'POST', '/direct-a', '"bad"');
      assert.equal(userError.status, 400, "the predictor's own 400");

      // Other paths on the same connection go back through the gateway and get its answers.
      const other = await call(agent, base, 'POST', '/direct-b', '{}');
      assert.equal(other.status, 200, other.body);
      assert.equal(JSON.parse(other.body).version, 'b', 'another API on the same connection');
      const health = await call(agent, base, 'GET', '/healthz');
      assert.deepEqual([health.status, JSON.parse(health.body)], [200, { status: 'ok' }]);
      const missing = await call(agent, base, 'GET', '/nope');
      assert.equal(missing.status, 404);
      assert.deepEqual(JSON.parse(missing.body).endpoints, ['/direct-a', '/direct-b']);
      const after = await call(agent, base, 'POST', '/direct-a', '{}');
      assert.equal(after.status, 200, 'the replica still serves after the bad requests');
      const all = [...answers, summary, preflight, put, bad, userError, other, health, missing, after];
      assert.ok(all.every((a) => a.localPort === first.localPort), 'still the one connection');

      // The replica reports what it answered (every second): 21 predictions, summary, preflight, 405, two 400s, one more.
      const stats = await waitFor('direct answers in the gateway stats', 10_000, () => {
        const s = gateway.stats('direct-a')!;
        return s.count - countBefore >= 27 ? s : undefined;
      });
      assert.equal(stats.count - countBefore, 27);
      assert.ok(stats.requests['4xx'] >= 3);
      const metrics = await gateway.metrics();
      assert.match(metrics, /myelin_gateway_requests_total\{api="direct-a",code="2xx"\} \d+/);
    } finally {
      agent.destroy();
    }
    await waitFor('the closed connection reported', 10_000, () => gateway.upstreams('direct-a')[0]?.direct === 0);
  });

  test('a rolling update under load over direct connections fails no request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const outcome = { ok: 0, failed: [] as string[], versions: new Set<string>() };
    let stop = false;
    const deadline = Date.now() + 90_000;
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop && Date.now() < deadline) {
        try {
          const a = await call(agent, base, 'POST', '/direct-a', '{}');
          if (a.status === 200) {
            outcome.ok++;
            outcome.versions.add(JSON.parse(a.body).version);
          } else outcome.failed.push(`${a.status} ${a.body}`);
        } catch (err) {
          outcome.failed.push(String((err as NodeJS.ErrnoException).code ?? err));
        }
      }
    });
    try {
      await waitFor('load flowing', 10_000, () => outcome.ok > 20);
      assert.ok(gateway.upstreams('direct-a')[0].direct >= 1, 'the clients are on direct connections');
      await d.deploy(api('direct-a', 'a2') + api('direct-b', 'b'));
      await waitFor('v a2 answering only', 90_000, async () => {
        const g = await d.running.daemon.get('direct-a');
        return g.upToDate === 1 && g.stale === 0 && outcome.versions.has('a2');
      });
      const mark = outcome.ok;
      await waitFor('more answers after the rollout', 10_000, () => outcome.ok > mark + 20);
    } finally {
      stop = true;
      await Promise.all(loops);
      agent.destroy();
    }
    assert.deepEqual(outcome.failed, [], 'no request failed');
    assert.ok(outcome.versions.has('a') && outcome.versions.has('a2'));
  });

  test('a replica that joins takes over a share of the existing connections at once', async () => {
    await d.deploy(api('direct-c', 'c', '  autoscaling:\n    min_replicas: 1\n    max_replicas: 2\n'));
    await waitFor('direct-c ready', 60_000, () => gateway.upstreams('direct-c').length === 1);
    const url = new URL(await d.url('direct-c'));
    // Four clients, one connection each, all handed to the one replica.
    const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    const pids = new Set<number>();
    const failed: string[] = [];
    let stop = false;
    const deadline = Date.now() + 60_000;
    const loops = agents.map(async (agent) => {
      while (!stop && Date.now() < deadline) {
        try {
          const a = await call(agent, url, 'POST', '/direct-c', '{}');
          if (a.status === 200) pids.add(JSON.parse(a.body).pid);
          else failed.push(`${a.status} ${a.body}`);
        } catch (err) {
          failed.push(String((err as NodeJS.ErrnoException).code ?? err));
        }
      }
    });
    try {
      await waitFor('four direct connections on the replica', 10_000, () => gateway.upstreams('direct-c')[0]?.direct === 4);
      assert.equal(pids.size, 1);
      // A second replica (an autoscaling change alone: no restart of the first).
      await d.deploy(api('direct-c', 'c', '  autoscaling:\n    min_replicas: 2\n    max_replicas: 2\n'));
      await waitFor('two replicas ready', 60_000, () => gateway.upstreams('direct-c').length === 2);
      await waitFor('both replicas answer the same four clients', 10_000, () => pids.size === 2);
      await waitFor('the connections split between them', 10_000, () => gateway.upstreams('direct-c').every((u) => u.direct === 2));
    } finally {
      stop = true;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
    }
    assert.deepEqual(failed, [], 'no request failed');
  });
});
