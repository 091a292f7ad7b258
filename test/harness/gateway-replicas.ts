/**
 * Test doubles for the gateway's upstreams: real `node:http` servers on 127.0.0.1 standing in for
 * replicas, whose behaviour a test switches per request (echo, hold until released, fail, destroy the
 * socket), plus a small HTTP client and helpers to describe replicas the way an orchestrator does.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_GATEWAY_PORT } from '../../core/config/api-spec.js';
import type { ReplicaInfo, ReplicaState } from '../../core/ports/orchestrator-target.js';

/** What a test replica saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  /** Lower-cased header map, first value of each. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * How the replica answers:
 * - `echo`: reads the body, answers 200 with the body echoed back (content-type kept), plus
 *   `x-replica` and `x-seen-url` headers;
 * - `hash`: streams the body through sha256 and answers `{replica, bytes, sha256}`;
 * - `hold`: reads the body, then waits until `release()` before answering like `echo`;
 * - `status`: answers the status in header `x-want-status` (default 200) with `{replica}`;
 * - `destroy`: destroys the socket as soon as the request head arrived (nothing answered);
 * - `destroy-mid-response`: writes the head and a first chunk, then destroys the socket;
 * - `reset-reused`: destroys the socket, answering nothing, when the request arrived on a connection
 *   that already served one (an idle keep-alive connection closed as a request went out: the
 *   keep-alive race); a request on a new connection is answered like `echo`;
 * - `refuse-large`: reads the body and, once it passes `refuseAfterBytes`, stops reading and answers
 *   413 with `connection: close` at once, as the real replica does (serving/replica/request-payload.ts).
 */
export type ReplicaMode = 'echo' | 'hash' | 'hold' | 'status' | 'destroy' | 'destroy-mid-response' | 'reset-reused' | 'refuse-large';

export class TestReplica {
  readonly name: string;
  mode: ReplicaMode;
  /** Every request head that reached this replica, in arrival order. */
  readonly seen: SeenRequest[] = [];
  /** Requests currently open on this replica (arrived, response not finished). */
  open = 0;
  /** Requests whose client side (the gateway) closed before the response finished. */
  abortedByPeer = 0;
  /** TCP (or unix) connections accepted so far. */
  connections = 0;
  /** The body size over which `refuse-large` answers 413. */
  refuseAfterBytes = 16 * 1024;
  /** Requests dropped by `reset-reused` (socket destroyed before any response byte). */
  resets = 0;
  private readonly servedOnSocket = new WeakMap<object, number>();
  private readonly server: Server;
  private held: Array<() => void> = [];
  private bodyListeners: Array<(bytes: number) => void> = [];

  private constructor(name: string, mode: ReplicaMode) {
    this.name = name;
    this.mode = mode;
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', () => this.connections++);
  }

  /** Starts a replica on a random loopback port, or on the unix socket `socketPath`. */
  static async start(name: string, mode: ReplicaMode = 'echo', socketPath?: string): Promise<TestReplica> {
    const r = new TestReplica(name, mode);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      if (socketPath !== undefined) r.server.listen(socketPath, () => resolve());
      else r.server.listen(0, '127.0.0.1', () => resolve());
    });
    return r;
  }

  /** The TCP port (throws for a unix-socket replica). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get hits(): number {
    return this.seen.length;
  }

  /** Answers every held request. */
  release(): void {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }

  /** Requests waiting in `hold` mode. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Resolves when a request body being read in `hash` mode has passed `bytes` bytes. */
  onBodyBytes(listener: (bytes: number) => void): void {
    this.bodyListeners.push(listener);
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers });
    this.open++;
    res.once('close', () => {
      this.open--;
      if (!res.writableFinished) this.abortedByPeer++;
    });
    const mode = this.mode;
    const served = this.servedOnSocket.get(req.socket) ?? 0;
    this.servedOnSocket.set(req.socket, served + 1);
    if (mode === 'reset-reused' && served > 0) {
      this.resets++;
      req.socket.destroy();
      return;
    }
    if (mode === 'destroy') {
      req.socket.destroy();
      return;
    }
    if (mode === 'refuse-large') {
      let bytes = 0;
      const onData = (chunk: Buffer): void => {
        bytes += chunk.length;
        if (bytes <= this.refuseAfterBytes) return;
        req.off('data', onData);
        req.pause();
        const body = JSON.stringify({ error: `request body is larger than the limit of ${this.refuseAfterBytes} bytes` });
        res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
        res.end(body);
      };
      req.on('data', onData);
      req.on('end', () => {
        if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes }));
      });
      return;
    }
    if (mode === 'hash') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        h.update(chunk);
        bytes += chunk.length;
        for (const l of this.bodyListeners) l(bytes);
      });
      req.on('end', () => {
        const body = JSON.stringify({ replica: this.name, bytes, sha256: h.digest('hex') });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (mode === 'hold') {
        this.held.push(() => this.echo(req, res, body));
      } else if (mode === 'status') {
        const status = Number(req.headers['x-want-status'] ?? 200);
        const out = JSON.stringify({ replica: this.name });
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      } else if (mode === 'destroy-mid-response') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1000 });
        res.write(Buffer.alloc(100, 1), () => setImmediate(() => req.socket.destroy()));
      } else {
        this.echo(req, res, body);
      }
    });
  }

  private echo(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    if (res.destroyed) return;
    res.writeHead(200, {
      'content-type': req.headers['content-type'] ?? 'application/octet-stream',
      'content-length': body.length,
      'x-replica': this.name,
      'x-seen-url': req.url ?? '',
      'X-Custom-Reply': ['one', 'two'],
    });
    res.end(body);
  }
}

/** A port on 127.0.0.1 that was free a moment ago (nothing listens on it when this resolves). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A replica as the orchestrator would list it. */
export function replicaInfo(api: string, id: string, port: number, state: ReplicaState = 'ready'): ReplicaInfo {
  return { id, api, revision: 'r1', state, address: { host: '127.0.0.1', port }, createdAt: 0 };
}

/** The fields of an API spec the gateway reads, with Cortex's defaults. */
export function gatewaySpec(
  name: string,
  overrides: { endpoint?: string; localPort?: number; maxReplicaConcurrency?: number; maxBodyBytes?: number } = {},
): { name: string; networking: { endpoint: string; localPort: number; maxBodyBytes: number }; autoscaling: { maxReplicaConcurrency: number } } {
  return {
    name,
    networking: {
      endpoint: overrides.endpoint ?? `/${name}`,
      localPort: overrides.localPort ?? DEFAULT_GATEWAY_PORT,
      maxBodyBytes: overrides.maxBodyBytes ?? 64 * 1024 * 1024,
    },
    autoscaling: { maxReplicaConcurrency: overrides.maxReplicaConcurrency ?? 1024 },
  };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

/** One HTTP request to 127.0.0.1:`port`; `body` may be a Buffer or an async iterable of chunks (sent chunked). */
export function httpRequest(
  port: number,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string | string[]> | string[];
    body?: Buffer | string | AsyncIterable<Buffer>;
    agent?: Agent | false;
    signal?: AbortSignal;
  },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: options.agent ?? false,
        signal: options.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    const body = options.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    void (async () => {
      try {
        for await (const chunk of body) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

/** Polls `check` until it holds, failing after `timeoutMs` with `what` (SG 9.2: no bare sleeps). */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
