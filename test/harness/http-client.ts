import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/** Where a server listens: TCP on loopback, or a unix socket. */
export type Target = { readonly port: number; readonly host?: string } | { readonly socketPath: string };

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  json(): unknown;
}

export interface HttpRequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string | number>;
  readonly body?: string | Uint8Array;
  /** Give up after this long (ms, default 30 000): tests never wait without a bound. */
  readonly timeoutMs?: number;
}

/** One HTTP request over a fresh connection (no agent), whole body buffered. Rejects on socket errors and timeout. */
export function httpCall(target: Target, options: HttpRequestOptions = {}): Promise<HttpResult> {
  const { method = 'GET', path = '/', headers = {}, body, timeoutMs = 30_000 } = options;
  return new Promise<HttpResult>((resolve, reject) => {
    const where = 'socketPath' in target ? { socketPath: target.socketPath } : { host: target.host ?? '127.0.0.1', port: target.port };
    const req = httpRequest({ ...where, method, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text, json: () => JSON.parse(text) as unknown });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs a JSON value to `path` (default `/predict`). */
export function postJson(target: Target, value: unknown, path = '/predict', headers: Record<string, string> = {}): Promise<HttpResult> {
  return httpCall(target, { method: 'POST', path, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) });
}

/**
 * Writes raw bytes on a fresh TCP connection and collects whatever comes back until the server closes
 * the connection or `waitMs` passes. `halfClose` ends our side after writing (a truncated upload).
 */
export function rawExchange(port: number, raw: string | Buffer, options: { halfClose?: boolean; waitMs?: number } = {}): Promise<string> {
  const { halfClose = false, waitMs = 2000 } = options;
  return new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(raw, () => {
      if (halfClose) socket.end();
    });
  });
}

/** Polls `probe` until it returns true, every `everyMs`, failing after `deadlineMs` (SG 9.2: no bare sleeps). */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, deadlineMs = 60_000, everyMs = 20): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
