import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientResponseHeaders, declaredContentLength, upstreamRequestHeaders } from '../../../serving/gateway/proxy-headers.js';

interface RequestCase {
  readonly name: string;
  readonly raw: readonly string[];
  readonly remote: string | undefined;
  /** Expected output without the generated x-request-id (checked separately). */
  readonly want: readonly string[];
  readonly generatesRequestId: boolean;
}

const requestCases: readonly RequestCase[] = [
  {
    name: 'keeps end-to-end headers with their case and order, drops hop-by-hop ones',
    raw: ['Host', 'gw:8888', 'Connection', 'keep-alive', 'X-Foo', 'a', 'x-foo', 'b', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Upgrade', 'h2c', 'Proxy-Connection', 'x', 'Expect', '100-continue', 'Content-Length', '4'],
    remote: '10.0.0.7',
    want: ['Host', 'gw:8888', 'X-Foo', 'a', 'x-foo', 'b', 'Content-Length', '4', 'x-forwarded-for', '10.0.0.7'],
    generatesRequestId: true,
  },
  {
    name: 'appends the client to an existing x-forwarded-for and keeps x-request-id',
    raw: ['X-Forwarded-For', '1.2.3.4', 'X-Request-Id', 'abc', 'Transfer-Encoding', 'chunked'],
    remote: '127.0.0.1',
    want: ['X-Request-Id', 'abc', 'Transfer-Encoding', 'chunked', 'x-forwarded-for', '1.2.3.4, 127.0.0.1'],
    generatesRequestId: false,
  },
  {
    name: 'joins repeated x-forwarded-for headers',
    raw: ['x-forwarded-for', '1.1.1.1', 'x-forwarded-for', '2.2.2.2'],
    remote: undefined,
    want: ['x-forwarded-for', '1.1.1.1, 2.2.2.2, unknown'],
    generatesRequestId: true,
  },
];

for (const c of requestCases) {
  test(`upstreamRequestHeaders: ${c.name}`, () => {
    const got = upstreamRequestHeaders(c.raw, c.remote);
    if (c.generatesRequestId) {
      assert.equal(got[got.length - 2], 'x-request-id');
      assert.match(got[got.length - 1], /^[0-9a-f-]{36}$/);
      assert.deepEqual(got.slice(0, -2), c.want);
    } else {
      assert.deepEqual(got, c.want);
    }
  });
}

test('upstreamRequestHeaders: with dropApiKeys, authorization and x-api-key (any case) stay at the gateway; without, they pass', () => {
  const raw = ['Host', 'h', 'Authorization', 'Bearer k', 'X-API-Key', 'k', 'x-api-key', 'k2', 'X-Request-Id', 'r1', 'X-Other', 'o'];
  assert.deepEqual(upstreamRequestHeaders(raw, '127.0.0.1', true), ['Host', 'h', 'X-Request-Id', 'r1', 'X-Other', 'o', 'x-forwarded-for', '127.0.0.1']);
  assert.deepEqual(upstreamRequestHeaders(raw, '127.0.0.1'), [...raw, 'x-forwarded-for', '127.0.0.1']);
});

const responseCases: ReadonlyArray<{ readonly name: string; readonly raw: readonly string[]; readonly want: readonly string[] }> = [
  {
    name: 'drops framing and connection headers, keeps the rest',
    raw: ['Content-Type', 'application/json', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Trailer', 'x'],
    want: ['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'],
  },
  { name: 'keeps content-length and date', raw: ['Content-Length', '2', 'Date', 'x'], want: ['Content-Length', '2', 'Date', 'x'] },
];

for (const c of responseCases) {
  test(`clientResponseHeaders: ${c.name}`, () => {
    assert.deepEqual(clientResponseHeaders(c.raw), c.want);
  });
}

const lengthCases: ReadonlyArray<{ readonly raw: readonly string[]; readonly want: number }> = [
  { raw: ['Host', 'x', 'Content-Length', '42'], want: 42 },
  { raw: ['content-length', '0'], want: 0 },
  { raw: ['Transfer-Encoding', 'chunked'], want: -1 },
  { raw: ['Content-Length', 'abc'], want: -1 },
];

for (const c of lengthCases) {
  test(`declaredContentLength: ${JSON.stringify(c.raw)} → ${c.want}`, () => {
    assert.equal(declaredContentLength(c.raw), c.want);
  });
}
