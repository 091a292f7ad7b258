// The gateway's side of direct connections (serving/gateway/direct-handoff.ts and Gateway.onConnection):
// which connections it hands to a replica and with what route, which it keeps and serves itself (the
// bytes it read put back first), how a replica's report lands in the stats, and that a handed
// connection counts against max_replica_concurrency. The replica's channel here records what it is
// sent; the real IPC hop and replica are in test/e2e/direct-connections.test.ts.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { directRequestPath } from '../../../serving/gateway/direct-handoff.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import { DEFAULT_AGENT_OPTIONS } from '../../../serving/gateway/upstream.js';
import { UpstreamPool } from '../../../serving/gateway/upstream-pool.js';
import { DIRECT_MESSAGES, type ConnectionMessage, type DirectStatsMessage } from '../../../serving/replica/direct-connection-protocol.js';
import { TestReplica, freePort, gatewaySpec, httpRequest, replicaInfo, waitFor } from '../../harness/gateway-replicas.js';

describe('directRequestPath', () => {
  const cases: ReadonlyArray<[string, string | null]> = [
    ['POST /iris HTTP/1.1\r\nhost: x\r\n\r\n{}', '/iris'],
    ['GET /iris?debug=true HTTP/1.1\r\n\r\n', '/iris'],
    ['POST /a/b HTTP/1.0\n\n', '/a/b'],
    ['POST /iris HTTP/1.1\r\nX-Myelin-Via-Replica: 1\r\n\r\n', null],
    ['POST /iris HTTP/1.1\r\nhost: x\r\nx-myelin-via-replica: 1\r\n\r\n', null],
    ['POST /iris HTTP/1.1\r\nx-myelin-via-replica-not: 1\r\n\r\n', '/iris'],
    ['POST /iris HTTP/1.1', null],
    ['POST /iris HT', null],
    ['GET http://host/iris HTTP/1.1\r\n\r\n', null],
    ['GET * HTTP/1.1\r\n\r\n', null],
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', null],
    ['\r\n', null],
    ['', null],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input.slice(0, 40))} ⇒ ${want}`, () => {
      assert.equal(directRequestPath(Buffer.from(input, 'latin1')), want);
    });
  }
});

/** A replica's IPC channel that records what the gateway sends it and lets the test emit its reports. */
class RecordingChannel extends EventEmitter {
  connected = true;
  readonly sent: Array<{ message: ConnectionMessage | { type: string; keep?: number }; socket: Socket | undefined }> = [];
  send(message: object, sendHandle?: unknown, _options?: object, callback?: (error: Error | null) => void): boolean {
    this.sent.push({ message: message as ConnectionMessage, socket: sendHandle as Socket | undefined });
    setImmediate(() => callback?.(null));
    return true;
  }
}

/** Opens a connection, writes `parts` one by one (a short pause between), resolves with what came back when it closes. */
function rawExchange(port: number, parts: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      if (/\r\n\r\n/.test(received) && /content-length: (\d+)/i.test(received)) {
        const len = Number(/content-length: (\d+)/i.exec(received)![1]);
        if (received.length - received.indexOf('\r\n\r\n') - 4 >= len) socket.end();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    void (async () => {
      for (const p of parts) {
        socket.write(p);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
  });
}

describe('gateway with direct connections', () => {
  let gw: Gateway;
  let port: number;
  let dedicatedPort: number;
  let iris: TestReplica;
  let keyed: TestReplica;
  let solo: TestReplica;
  const channels = new Map<string, RecordingChannel>();
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);

  before(async () => {
    gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000, directConnections: true }, pino({ level: 'silent' }));
    await gw.start();
    port = gw.sharedPort();
    iris = await TestReplica.start('iris-0');
    keyed = await TestReplica.start('keyed-0');
    solo = await TestReplica.start('solo-0');
    for (const id of ['iris-0', 'keyed-0', 'solo-0']) {
      const c = new RecordingChannel();
      channels.set(id, c);
      gw.attachReplicaChannel(id, c);
    }
    replicas$.next([replicaInfo('iris', 'iris-0', iris.port), replicaInfo('keyed', 'keyed-0', keyed.port), replicaInfo('solo', 'solo-0', solo.port)]);
    await gw.upsertApi(gatewaySpec('iris', { maxReplicaConcurrency: 2 }));
    await gw.upsertApi(gatewaySpec('keyed'), { apiKeys: ['s3cret'] });
    dedicatedPort = await freePort();
    await gw.upsertApi(gatewaySpec('solo', { localPort: dedicatedPort }));
  });
  after(async () => {
    await gw.close();
    await iris.close();
    await keyed.close();
    await solo.close();
  });

  test("a connection whose first request is for an open API goes to its replica, with the bytes read and the API's route", async () => {
    const before = channels.get('iris-0')!.sent.length;
    const body = '{"x":1}';
    await rawExchange(port, [`POST /iris?q=1 HTTP/1.1\r\nhost: h\r\ncontent-length: ${body.length}\r\n\r\n${body}`]);
    const sent = channels.get('iris-0')!.sent.slice(before);
    assert.equal(sent.length, 1);
    const m = sent[0].message as ConnectionMessage;
    assert.equal(m.type, DIRECT_MESSAGES.connection);
    assert.equal(m.head, `POST /iris?q=1 HTTP/1.1\r\nhost: h\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    assert.deepEqual({ ...m.route, generation: undefined }, { api: 'iris', paths: ['/iris'], back: { host: '127.0.0.1', port }, keepAliveTimeoutMs: 5000, generation: undefined });
    assert.ok(m.route.generation >= 1);
    assert.ok(sent[0].socket !== undefined, 'the socket goes with it');
    assert.equal(iris.seen.length, 0, 'nothing was forwarded');
    assert.equal(gw.upstreams('iris')[0].direct, 1);
  });

  test('on a port with a single API, its route also has the port root', async () => {
    await rawExchange(dedicatedPort, ['POST /solo HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n']);
    const m = channels.get('solo-0')!.sent.at(-1)!.message as ConnectionMessage;
    assert.deepEqual(m.route.paths, ['/solo', '/']);
    assert.equal(m.route.back.port, dedicatedPort);
  });

  test('kept at the gateway: a key-protected API, other paths, a marked request, a request line split over reads', async () => {
    const sentBefore = [...channels.values()].reduce((n, c) => n + c.sent.length, 0);
    const unauthorized = await rawExchange(port, ['POST /keyed HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n']);
    assert.match(unauthorized, /^HTTP\/1\.1 401/);
    const withKey = await httpRequest(port, { method: 'POST', path: '/keyed', headers: { authorization: 'Bearer s3cret' }, body: '{}' });
    assert.equal(withKey.status, 200);
    assert.equal(keyed.seen.length, 1, 'forwarded by the gateway');
    const health = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nhost: h\r\n\r\n']);
    assert.match(health, /^HTTP\/1\.1 200/);
    const marked = await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\nx-myelin-via-replica: 1\r\ncontent-length: 2\r\n\r\n{}']);
    assert.match(marked, /^HTTP\/1\.1 200/);
    const split = await rawExchange(port, ['PO', 'ST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n', '{}']);
    assert.match(split, /^HTTP\/1\.1 200/, 'the first bytes were put back before the http server read on');
    assert.equal(iris.seen.length, 2, 'the marked and the split request were forwarded');
    assert.equal([...channels.values()].reduce((n, c) => n + c.sent.length, 0), sentBefore, 'none of these was handed over');
  });

  test("a replica's report counts in the API's stats and frees the slots of its closed connections", async () => {
    const base = gw.stats('iris')!;
    const report: DirectStatsMessage = { type: DIRECT_MESSAGES.stats, api: 'iris', s2xx: 5, s3xx: 0, s4xx: 1, s5xx: 0, latencyMsSum: 12, aborted: 1, closed: 1, inFlight: 2, connections: 0 };
    channels.get('iris-0')!.emit('message', report);
    const s = gw.stats('iris')!;
    assert.equal(s.count - base.count, 6);
    assert.equal(s.requests['2xx'] - base.requests['2xx'], 5);
    assert.equal(s.aborted - base.aborted, 1);
    assert.equal(s.inFlight - base.inFlight, 2, 'in flight on direct connections, as last reported');
    assert.equal(gw.upstreams('iris')[0].direct, 0, 'the closed connection left');
    channels.get('iris-0')!.emit('message', { ...report, s2xx: 0, s4xx: 0, aborted: 0, latencyMsSum: 0, closed: 0, inFlight: 0 });
    assert.equal(gw.stats('iris')!.inFlight, base.inFlight);
    channels.get('iris-0')!.emit('message', { type: DIRECT_MESSAGES.stats, api: 'iris', s2xx: -1 });
    assert.equal(gw.stats('iris')!.count, s.count, 'a malformed report is ignored');
  });

  test('connections are never refused for their number; the in-flight count a replica reports limits proxied requests', async () => {
    const c = channels.get('iris-0')!;
    const before = c.sent.length;
    // max_replica_concurrency is 2 for iris: three idle keep-alive clients are not three requests.
    for (let i = 0; i < 3; i++) await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n']);
    assert.equal(c.sent.length, before + 3, 'all three handed over');
    assert.equal(gw.upstreams('iris')[0].direct, 3);
    const report = (inFlight: number, closed: number): DirectStatsMessage => ({ type: DIRECT_MESSAGES.stats, api: 'iris', s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, latencyMsSum: 0, aborted: 0, closed, inFlight, connections: 3 - closed });
    c.emit('message', report(2, 0));
    const full = await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\nx-myelin-via-replica: 1\r\ncontent-length: 2\r\n\r\n{}']);
    assert.match(full, /^HTTP\/1\.1 503/, 'two requests in flight on its direct connections: the replica is full');
    assert.match(full, /max_replica_concurrency/);
    c.emit('message', report(0, 3));
    assert.equal(gw.upstreams('iris')[0].direct, 0, 'their slots are free again');
    const ok = await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\nx-myelin-via-replica: 1\r\ncontent-length: 2\r\n\r\n{}']);
    assert.match(ok, /^HTTP\/1\.1 200/);
  });

  test("a connection kept at the gateway still meets the http server's headers timeout, as does one that sends nothing", async () => {
    const slow = new Gateway({ host: '127.0.0.1', port: 0, replicas$, directConnections: true, headersTimeoutMs: 300, requestTimeoutMs: 1000, timeoutCheckIntervalMs: 100 }, pino({ level: 'silent' }));
    await slow.start();
    try {
      const partial = await rawExchange(slow.sharedPort(), ['GET /healthz HTTP/1.1\r\nhost: h\r\n']);
      assert.match(partial, /^HTTP\/1\.1 408/, 'the head never completed');
      const silent = await rawExchange(slow.sharedPort(), []);
      assert.equal(silent, '', 'closed without an answer');
    } finally {
      await slow.close();
    }
  });

  test('a second replica joining asks the busy one to shed down to its share', async () => {
    const c = channels.get('iris-0')!;
    await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n']);
    await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n']);
    const iris2 = await TestReplica.start('iris-1');
    try {
      const c2 = new RecordingChannel();
      gw.attachReplicaChannel('iris-1', c2);
      replicas$.next([...replicas$.value, replicaInfo('iris', 'iris-1', iris2.port)]);
      const shed = c.sent.at(-1)!.message;
      assert.deepEqual(shed, { type: DIRECT_MESSAGES.shed, keep: 1 });
    } finally {
      replicas$.next(replicas$.value.filter((r) => r.id !== 'iris-1'));
      await iris2.close();
    }
  });
});

describe('UpstreamPool.pickForConnection', () => {
  const pool = new UpstreamPool('api', DEFAULT_AGENT_OPTIONS);
  pool.update([replicaInfo('api', 'a', 1001), replicaInfo('api', 'b', 1002), replicaInfo('api', 'c', 1003)]);
  const [a, b, c] = pool.upstreams();
  after(() => pool.clear());

  test('fewest connections and proxied requests first, ties in turn, no limit, a refusing replica last', () => {
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const u = pool.pickForConnection(0)!;
      u.directCounts.direct++;
      picks.push(u.id);
    }
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c'], 'equal replicas take turns');
    a.outstanding = 5;
    assert.equal(pool.pickForConnection(0)!.id, 'b', 'proxied requests count too');
    b.directCounts.direct = 10_000;
    c.directCounts.direct = 10_000;
    assert.equal(pool.pickForConnection(0)!.id, 'a', 'never refused for the number of connections');
    a.ejectedUntilMs = 100;
    assert.notEqual(pool.pickForConnection(50)!.id, 'a', 'a replica that refused a connection goes last');
    assert.equal(pool.pickForConnection(150)!.id, 'a', 'until its ejection ends');
    a.outstanding = 0;
  });

  test('no ready replica: none', () => {
    const empty = new UpstreamPool('none', DEFAULT_AGENT_OPTIONS);
    assert.equal(empty.pickForConnection(0), undefined);
  });
});

describe('gateway with direct connections to a real child process', () => {
  test('a replica that dies with hand-overs queued: they are served by the gateway, the one in transit is closed, close() ends', async () => {
    await withChild(async ({ gw, port, child, upstream }) => {
      // Handed to the child and answered by it.
      const first = await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}']);
      assert.match(first, new RegExp(`"pid":${child.pid}`));
      // A busy child: the first hand-over waits for its acknowledgement, the next ones queue behind it.
      child.send({ type: 'block', ms: 1500 });
      const clients = Array.from({ length: 4 }, () => rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}']));
      await waitFor('four hand-overs sent', () => gw.upstreams('iris')[0].direct >= 4, 5000);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const answers = await Promise.all(clients);
      const servedHere = answers.filter((a) => /^HTTP\/1\.1 200/.test(a) && !a.includes(`"pid":${child.pid}`));
      assert.ok(servedHere.length >= 2, `queued hand-overs served by the gateway (${answers.map((a) => a.slice(0, 15) || 'closed').join(' | ')})`);
      assert.ok(answers.every((a) => a === '' || /^HTTP\/1\.1 200/.test(a)), 'every client got an answer or a closed connection');
      assert.equal(upstream.seen.length, servedHere.length, 'proxied to the replica as any request');
      assert.equal(gw.upstreams('iris')[0].direct, 0, 'its connections are forgotten with its channel');
    });
  });
});

/** A gateway with one API whose replica is a real child process taking direct connections, and a plain upstream for what stays proxied. */
async function withChild(run: (g: { gw: Gateway; port: number; child: ReturnType<typeof fork>; upstream: TestReplica }) => Promise<void>): Promise<void> {
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000, directConnections: true }, pino({ level: 'silent' }));
  await gw.start();
  const upstream = await TestReplica.start('iris-0');
  const child = fork(new URL('./fixtures/direct-child.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await new Promise<void>((r) => child.once('message', () => r()));
    const detach = gw.attachReplicaChannel('iris-0', child);
    child.once('exit', detach);
    replicas$.next([replicaInfo('iris', 'iris-0', upstream.port)]);
    await gw.upsertApi(gatewaySpec('iris'));
    await run({ gw, port: gw.sharedPort(), child, upstream });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await gw.close();
    await upstream.close();
  }
}

function keepAliveCall(agent: Agent, port: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string; connection: string | undefined; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/iris', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection, localPort: req.socket?.localPort ?? -1 }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

describe('direct connections and route changes, client resets (real child process)', () => {
  test('keys added to a route reach connections already handed over: their next request gets 401 from the gateway', async () => {
    await withChild(async ({ gw, port, child }) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await keepAliveCall(agent, port);
        assert.equal(first.status, 200);
        assert.match(first.body, new RegExp(`"pid":${child.pid}`), 'served by the child');
        await gw.upsertApi(gatewaySpec('iris'), { apiKeys: ['s3cret'] });
        await new Promise((r) => setTimeout(r, 100)); // the revocation travels over IPC
        const after = await keepAliveCall(agent, port);
        assert.equal(after.localPort, first.localPort, 'on the connection handed before the change');
        assert.equal(after.status, 401, after.body);
        assert.equal(after.connection, 'close', 'and it is closed, so the client reconnects');
        const withKey = await keepAliveCall(agent, port, { authorization: 'Bearer s3cret' });
        assert.equal(withKey.status, 200);
        assert.ok(!withKey.body.includes(`"pid":${child.pid}`), 'a key-protected route stays at the gateway');
      } finally {
        agent.destroy();
      }
    });
  });

  test('clients that reset while their hand-over is queued: no crash, and their slots come back', async () => {
    await withChild(async ({ gw, port, child }) => {
      child.send({ type: 'block', ms: 800 });
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => {});
          await new Promise<void>((r) => s.once('connect', () => r()));
          s.write('POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}');
          await new Promise((r) => setTimeout(r, 5));
          s.resetAndDestroy();
        }),
      );
      await waitFor('every slot back', () => gw.upstreams('iris')[0].direct === 0, 10_000);
      const ok = await rawExchange(port, ['POST /iris HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\n{}']);
      assert.match(ok, /^HTTP\/1\.1 200/, 'still serving');
    });
  });
});
