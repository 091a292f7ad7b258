import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/ports/logger.js';
import type { ApiRequestStats } from './api-request-stats.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './proxy-headers.js';
import type { Upstream } from './upstream.js';
import type { UpstreamPool } from './upstream-pool.js';

/** What forwarding one request needs from the gateway. */
export interface ForwardContext {
  readonly api: string;
  readonly pool: UpstreamPool;
  readonly stats: ApiRequestStats;
  /** A connection not established after this long counts as refused (nothing was sent), ms. */
  readonly connectTimeoutMs: number;
  /** A replica that refused a connection is tried last for this long, ms. */
  readonly ejectMs: number;
  readonly log: Logger;
}

/** Answers with a small JSON error; `retryAfterS` adds `Retry-After`. */
export function sendJsonError(res: ServerResponse, status: number, error: string, retryAfterS?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (retryAfterS !== undefined) headers['retry-after'] = retryAfterS;
  res.writeHead(status, headers);
  res.end(body);
}

function isConnectRefusal(err: NodeJS.ErrnoException): boolean {
  const c = err.code;
  return c === 'ECONNREFUSED' || c === 'ENOENT' || c === 'EHOSTUNREACH' || c === 'ENETUNREACH' || c === 'ETIMEDOUT';
}

/**
 * Forwards one client request to a replica of `ctx.pool` and streams the answer back.
 *
 * - The client body is not read until the upstream socket is connected (a reused keep-alive socket is
 *   connected already). If the connection fails before that — refused, unreachable, or not connected
 *   within `connectTimeoutMs` — nothing of the request reached the replica and the body is still
 *   unread, so the request is retried on another replica, each replica at most once; when every ready
 *   replica failed to connect the answer is 503 with `Retry-After` (safe to retry).
 * - Once the first byte was handed to the upstream socket there is no retry (predictions are not
 *   idempotent): a failure before the response head is 502; after it, the client connection is
 *   destroyed so the client sees a truncated response rather than a complete-looking one.
 * - When the client goes away, the upstream request is aborted, so the replica's in-flight count drops.
 * - `upstreamPath` is `/predict?…` for POST and `/?…` for GET (Cortex's rewrite); headers other than
 *   hop-by-hop ones, and the body, pass through unchanged (see `proxy-headers.ts`).
 *
 * `startMs` is the arrival time on `performance.now()`; stats are recorded when the response closes.
 */
export function forwardRequest(
  ctx: ForwardContext,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamPath: string,
  startMs: number,
): void {
  const stats = ctx.stats;
  stats.inFlight++;
  const headers = upstreamRequestHeaders(req.rawHeaders, req.socket.remoteAddress);
  const method = req.method;
  let tried: Upstream[] | null = null;
  let current: ClientRequest | null = null;
  let finished = false;
  let lastConnectError: NodeJS.ErrnoException | null = null;

  res.once('close', () => {
    finished = true;
    stats.inFlight--;
    stats.record(res.headersSent ? res.statusCode : 0, performance.now() - startMs);
    // The client left before the response was complete: abort the upstream request too.
    if (!res.writableFinished && current !== null) current.destroy();
  });

  attempt();

  function attempt(): void {
    const nowMs = performance.now();
    const picked = ctx.pool.pick(nowMs, tried);
    if (typeof picked === 'string') {
      if (tried !== null) {
        sendJsonError(
          res,
          503,
          `no replica of ${ctx.api} accepted the connection (${lastConnectError?.code ?? 'connect failed'})`,
          1,
        );
      } else if (picked === 'none') {
        sendJsonError(res, 503, `no ready replicas for ${ctx.api}`, 1);
      } else {
        sendJsonError(
          res,
          503,
          `every ready replica of ${ctx.api} is at max_replica_concurrency (${ctx.pool.maxConcurrency})`,
          1,
        );
      }
      return;
    }
    const up = picked;
    if (tried !== null) stats.retries++;
    up.acquire();
    let sent = false;
    let released = false;
    let connectTimer: NodeJS.Timeout | null = null;
    const upReq = request({
      agent: up.agent,
      host: up.host,
      port: up.port,
      socketPath: up.socketPath,
      method,
      path: upstreamPath,
      headers,
      setHost: false,
    });
    current = upReq;

    const send = (): void => {
      if (connectTimer !== null) {
        clearTimeout(connectTimer);
        connectTimer = null;
      }
      if (finished) return;
      sent = true;
      req.pipe(upReq);
    };

    upReq.on('socket', (socket: Socket) => {
      if (!socket.connecting) {
        send();
        return;
      }
      connectTimer = setTimeout(() => {
        const err: NodeJS.ErrnoException = new Error(`connect to replica ${up.id} timed out after ${ctx.connectTimeoutMs} ms`);
        err.code = 'ETIMEDOUT';
        upReq.destroy(err);
      }, ctx.connectTimeoutMs);
      socket.once('connect', send);
    });

    upReq.on('response', (upRes: IncomingMessage) => {
      if (finished) {
        upRes.resume();
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, clientResponseHeaders(upRes.rawHeaders));
      // The replica dropped the connection mid-body: end the client's response abruptly as well.
      upRes.on('error', () => res.destroy());
      upRes.pipe(res);
    });

    upReq.on('error', (err: NodeJS.ErrnoException) => {
      if (connectTimer !== null) {
        clearTimeout(connectTimer);
        connectTimer = null;
      }
      if (finished) return;
      if (!sent) {
        // Nothing of the request reached the replica: try another one (each replica once).
        if (isConnectRefusal(err)) up.ejectedUntilMs = performance.now() + ctx.ejectMs;
        lastConnectError = err;
        (tried ??= []).push(up);
        release();
        current = null;
        if (ctx.log.isLevelEnabled('debug')) {
          ctx.log.debug({ api: ctx.api, replica: up.id, code: err.code }, 'replica connect failed, retrying elsewhere');
        }
        attempt();
        return;
      }
      ctx.log.warn({ api: ctx.api, replica: up.id, err }, 'replica failed while handling a request');
      if (!res.headersSent) {
        sendJsonError(res, 502, `replica ${up.id} of ${ctx.api} failed while handling the request (${err.code ?? err.message})`);
      } else {
        res.destroy();
      }
    });

    upReq.once('close', release);

    function release(): void {
      if (released) return;
      released = true;
      up.release();
    }
  }
}
