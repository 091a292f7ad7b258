// The replica's side of direct connections (serving/replica/direct-connections.ts) with real sockets:
// a loopback listener stands in for the gateway and hands every accepted connection to a real replica
// in this process (`adoptConnection`; the IPC hop itself is covered by test/e2e/direct-connections).
import assert from 'node:assert/strict';
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { DirectRoute, DirectStatsMessage } from '../../../serving/replica/direct-connection-protocol.js';
import { VIA_REPLICA_HEADER } from '../../../serving/replica/direct-connection-protocol.js';
import { startBehaviourReplica, type TestReplica } from './replica-test-kit.js';

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly localPort: number;
}

function call(port: number, agent: Agent, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, localPort: req.socket?.localPort ?? -1 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(server: Server | NetServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('direct connections: the replica side', () => {
  let r: TestReplica;
  let front: NetServer;
  let frontPort: number;
  let back: Server;
  const backSeen: IncomingHttpHeaders[] = [];
  const reports: DirectStatsMessage[] = [];
  /** The route generation the stand-in gateway hands connections with. */
  let generation = 1;

  before(async () => {
    r = await startBehaviourReplica({}, { reportDirect: (m) => reports.push(m), headersTimeoutMs: 500, requestTimeoutMs: 2000 });
    await r.replica.ready;
    // What the gateway answers for the paths that are not the API's.
    back = createServer((req, res) => {
      backSeen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'x-from': 'gateway' }).end(`gateway saw ${req.method} ${req.url}`));
    });
    const backPort = await listen(back);
    const route: DirectRoute = { api: 'test-api', paths: ['/my-api', '/'], back: { host: '127.0.0.1', port: backPort }, keepAliveTimeoutMs: 5000, generation: 1 };
    front = createNetServer({ pauseOnConnect: true }, (socket) => r.replica.adoptConnection(socket, Buffer.alloc(0), { ...route, generation }));
    frontPort = await listen(front);
  });
  after(async () => {
    front.close();
    back.closeAllConnections();
    back.close();
    await r?.[Symbol.asyncDispose]();
  });

  test("the API's paths are its predict and summary routes; other paths go back through the gateway", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const p = await call(frontPort, agent, 'POST', '/my-api?behave=echo&k=v', '{"a":1}');
      assert.equal(p.status, 200, p.body);
      assert.deepEqual(JSON.parse(p.body).query, { behave: 'echo', k: 'v' }, 'the query string reaches the predictor');
      const root = await call(frontPort, agent, 'POST', '/', '{"a":1}');
      assert.equal(root.status, 200, 'the port root, when the route lists it');
      const summary = await call(frontPort, agent, 'GET', '/my-api');
      assert.equal(summary.status, 200);
      assert.match(JSON.parse(summary.body).message, /make a prediction/);
      const other = await call(frontPort, agent, 'POST', '/other?x=1', '{"b":2}');
      assert.equal(other.status, 200);
      assert.equal(other.body, 'gateway saw POST /other?x=1');
      assert.equal(other.headers['x-from'], 'gateway');
      const seen = backSeen.at(-1)!;
      assert.equal(seen[VIA_REPLICA_HEADER], '1', 'marked, so the gateway never hands that connection again');
      assert.equal(seen['x-forwarded-for'], '127.0.0.1', "the client's address");
      // /predict itself is not the API's endpoint here: it goes back too, as the gateway would 404 it.
      const predictPath = await call(frontPort, agent, 'POST', '/predict', '{}');
      assert.equal(predictPath.body, 'gateway saw POST /predict');
      assert.ok([p, root, summary, other, predictPath].every((a) => a.localPort === p.localPort), 'one connection');
    } finally {
      agent.destroy();
    }
    await until('a report with the answers and the closed connection', () => reports.reduce((n, m) => n + m.closed, 0) >= 1);
    const total = reports.reduce((n, m) => n + m.s2xx, 0);
    assert.equal(total, 3, 'the three requests it answered itself (not the two that went back)');
    assert.equal(reports.at(-1)!.api, 'test-api');
  });

  test('a request head that never completes is cut by the replica\'s headers timeout', async () => {
    const socket = connect(frontPort, '127.0.0.1');
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    socket.write('POST /my-api HTTP/1.1\r\nhost: x\r\n');
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    assert.match(received, /^HTTP\/1\.1 408/);
  });

  test('a malformed request gets 400 and the replica keeps serving', async () => {
    const socket = connect(frontPort, '127.0.0.1');
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    assert.match(received, /^HTTP\/1\.1 400/);
    const agent = new Agent({ keepAlive: true });
    assert.equal((await call(frontPort, agent, 'POST', '/my-api', '{}')).status, 200);
    agent.destroy();
  });

  test('revoke: older connections send their next request back through the gateway and close; a hand-over that arrives revoked does too', async () => {
    const held = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await call(frontPort, held, 'POST', '/my-api', '{}');
      assert.equal(before.status, 200);
      assert.equal(before.headers['content-type'], 'application/json', "the replica's own answer");
      const seen = backSeen.length;
      r.replica.revokeDirect(2);
      const after = await call(frontPort, held, 'POST', '/my-api', '{}');
      assert.equal(after.body, 'gateway saw POST /my-api', 'routed by the gateway as it is now');
      assert.equal(after.localPort, before.localPort, 'on the connection handed before');
      assert.equal(after.headers.connection, 'close');
      assert.equal(backSeen.length, seen + 1);
      // This front hands connections with generation 1: each now arrives revoked (the revocation overtook it).
      const late = new Agent({ keepAlive: true, maxSockets: 1 });
      const first = await call(frontPort, late, 'POST', '/my-api', '{}');
      late.destroy();
      assert.equal(first.body, 'gateway saw POST /my-api');
      assert.equal(first.headers.connection, 'close');
      // Connections handed with the current routes are served by the replica again.
      generation = 2;
      const current = new Agent({ keepAlive: true, maxSockets: 1 });
      const fresh = await call(frontPort, current, 'POST', '/my-api', '{}');
      current.destroy();
      assert.equal(fresh.headers['content-type'], 'application/json');
      assert.notEqual(fresh.headers.connection, 'close');
    } finally {
      held.destroy();
    }
  });

  test('shed: connections beyond the kept number close after their next response', async () => {
    const agents = [0, 1, 2, 3].map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      for (const a of agents) assert.equal((await call(frontPort, a, 'POST', '/my-api', '{}')).status, 200);
      await until('four direct connections', () => (r.replica as unknown as { direct: { connections: number } }).direct.connections === 4);
      r.replica.shedDirect(1);
      const next = await Promise.all(agents.map((a) => call(frontPort, a, 'POST', '/my-api', '{}')));
      assert.ok(next.every((a) => a.status === 200));
      assert.deepEqual(next.map((a) => a.headers.connection).sort(), ['close', 'close', 'close', 'keep-alive']);
      await until('one left', () => (r.replica as unknown as { direct: { connections: number } }).direct.connections === 1);
    } finally {
      for (const a of agents) a.destroy();
    }
  });

  test('drain: a busy connection gets Connection: close, an idle one closes after a second idle, no request fails', async () => {
    const busy = new Agent({ keepAlive: true, maxSockets: 1 });
    const idle = new Agent({ keepAlive: true, maxSockets: 1 });
    const statuses: number[] = [];
    const connectionHeaders: string[] = [];
    let stop = false;
    try {
      assert.equal((await call(frontPort, idle, 'POST', '/my-api', '{}')).status, 200);
      let idleClosed = false;
      const idleSocket = (idle as unknown as { freeSockets: Record<string, import('node:net').Socket[]> }).freeSockets;
      const [sock] = Object.values(idleSocket).flat();
      sock.once('close', () => (idleClosed = true));
      const loop = (async () => {
        while (!stop) {
          const a = await call(frontPort, busy, 'POST', '/my-api', '{}');
          statuses.push(a.status);
          connectionHeaders.push(String(a.headers.connection));
        }
      })();
      await until('busy loop flowing', () => statuses.length > 5);
      const closing = r.replica.close({ graceMs: 10_000 });
      await until('the busy connection told to close', () => connectionHeaders.includes('close'));
      stop = true;
      await loop;
      await closing;
      assert.ok(idleClosed, 'the idle connection was closed');
      assert.ok(statuses.every((s) => s === 200), `every request answered: ${statuses.join(',')}`);
    } finally {
      stop = true;
      busy.destroy();
      idle.destroy();
    }
  });
});
