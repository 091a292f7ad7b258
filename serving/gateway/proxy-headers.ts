import { randomUUID } from 'node:crypto';

/*
 * Header rewriting on the proxy path, on Node's flat raw-header arrays (`[name, value, name, value, …]`,
 * names as the peer wrote them). Working on `rawHeaders` keeps case and repeated headers exactly as
 * sent and avoids building the lower-cased `headers` object on every request. Names are compared by
 * length first, so most headers cost one integer switch.
 */

/** Hop-by-hop request headers (RFC 9110 §7.6.1) plus `expect` (Node answers 100-continue itself) and the replaced `x-forwarded-for`. */
function dropFromRequest(name: string): boolean {
  switch (name.length) {
    case 2:
      return name.toLowerCase() === 'te';
    case 6:
      return name.toLowerCase() === 'expect';
    case 7:
      return name.toLowerCase() === 'upgrade';
    case 10: {
      const n = name.toLowerCase();
      return n === 'connection' || n === 'keep-alive';
    }
    case 15:
      return name.toLowerCase() === 'x-forwarded-for';
    case 16:
      return name.toLowerCase() === 'proxy-connection';
    default:
      return false;
  }
}

/**
 * Hop-by-hop response headers. `transfer-encoding` goes too: Node re-frames the body it writes to the
 * client (chunked for HTTP/1.1 without a content-length), so the upstream's framing must not leak.
 */
function dropFromResponse(name: string): boolean {
  switch (name.length) {
    case 7: {
      const n = name.toLowerCase();
      return n === 'upgrade' || n === 'trailer';
    }
    case 10: {
      const n = name.toLowerCase();
      return n === 'connection' || n === 'keep-alive';
    }
    case 16:
      return name.toLowerCase() === 'proxy-connection';
    case 17:
      return name.toLowerCase() === 'transfer-encoding';
    default:
      return false;
  }
}

/** The headers that carry a prediction API key (api-keys.ts), dropped once the gateway has checked one. */
function isApiKeyHeader(name: string): boolean {
  return (name.length === 13 && name.toLowerCase() === 'authorization') || (name.length === 9 && name.toLowerCase() === 'x-api-key');
}

/**
 * Headers for the upstream request: the client's headers unchanged (including `host`,
 * `content-length` and `transfer-encoding`, so the body is framed as the client framed it) minus
 * hop-by-hop ones, `x-forwarded-for` extended with the client's address, and an `x-request-id`
 * assigned when the client sent none. With `dropApiKeys` (the gateway checked the route's
 * `networking.api_keys`), `authorization` and `x-api-key` are not passed on: the key is the gateway's
 * business, and a replica (or its predictor's logs) never sees it.
 */
export function upstreamRequestHeaders(raw: readonly string[], remoteAddress: string | undefined, dropApiKeys = false): string[] {
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (dropApiKeys && isApiKeyHeader(name)) continue;
    if (dropFromRequest(name)) {
      if (name.length === 15) forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    }
    if (name.length === 12 && !hasRequestId && name.toLowerCase() === 'x-request-id') hasRequestId = true;
    out.push(name, raw[i + 1]);
  }
  const client = remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  if (!hasRequestId) out.push('x-request-id', randomUUID());
  return out;
}

/** The request's declared `content-length` (the first one), or -1 when there is none or it is not a number. */
export function declaredContentLength(raw: readonly string[]): number {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      const n = Number(raw[i + 1]);
      return Number.isFinite(n) ? n : -1;
    }
  }
  return -1;
}

/** Headers for the client's response: the replica's headers minus hop-by-hop ones. */
export function clientResponseHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!dropFromResponse(raw[i])) out.push(raw[i], raw[i + 1]);
  }
  return out;
}
