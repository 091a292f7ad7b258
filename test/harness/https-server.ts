/**
 * A local HTTPS file server for the model store and cache tests, on a random 127.0.0.1 port, with a
 * self-signed certificate made by `openssl req -x509` into a temporary directory (`caFile`, for
 * MYELIN_MODEL_CA_FILE). It serves:
 *
 * - files added with `add(path, content)`: bytes, a file on disk (streamed), or generated content of
 *   any size (a deterministic pattern computed per range, so a 200 MB model takes no disk or memory);
 *   HEAD, GET, `Range: bytes=a-` / `a-b` (206), an ETag (the MD5 by default) and optionally
 *   `Content-MD5`;
 * - the Google Cloud Storage JSON API for files added under `/<bucket>/…`: objects.get
 *   (`/storage/v1/b/<bucket>/o/<name>`) and objects.list (`/storage/v1/b/<bucket>/o?prefix=&pageToken=`,
 *   `gcsPageSize` items a page), with `md5Hash` in base64;
 * - faults on demand: `cut(path, afterBytes, times)` ends the next GETs' connections after that many
 *   body bytes; `corrupt(path, times)` flips the first byte sent; `hold(path)` keeps GETs waiting until
 *   released; `refuseHead(path)` answers HEAD with 405; `answer(path, status, headers)` answers every
 *   request with a fixed status (403, a redirect).
 *
 * Every request is recorded (`requests`). `close()` ends every connection, stops the server and
 * removes the directory; `await using` does the same.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const OPENSSL_BIN = process.env.MYELIN_OPENSSL ?? '/usr/bin/openssl';

/** What a path serves. */
export type ServedContent = Uint8Array | string | { readonly file: string } | { readonly generated: { readonly size: number; readonly seed?: number } };

export interface AddOptions {
  /** The ETag header: `'md5'` (default, quoted hex MD5), `'none'`, or a literal value sent as is. */
  readonly etag?: 'md5' | 'none' | string;
  /** Also send `Content-MD5` (base64). */
  readonly contentMd5?: boolean;
  readonly lastModified?: Date;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly authorization?: string;
}

interface Entry {
  readonly size: number;
  readonly md5: Buffer;
  readonly options: AddOptions;
  readonly lastModified: Date;
  chunks(start: number, end: number): AsyncIterable<Buffer>;
}

export interface HttpsTestServer extends AsyncDisposable {
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  /** The certificate (PEM) to trust: point MYELIN_MODEL_CA_FILE at it. */
  readonly caFile: string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** GCS objects.list page size; default 1000. */
  gcsPageSize: number;
  /** `origin + path`. */
  url(path: string): string;
  /** Serves `content` at `path` (`/models/iris.onnx`, or `/<bucket>/<name>` for gs://). Resolves when its MD5 is known. */
  add(path: string, content: ServedContent, options?: AddOptions): Promise<void>;
  /** Declares an empty GCS bucket (a bucket with files exists already). */
  addBucket(name: string): void;
  /** The MD5 (hex) of what `path` serves. */
  md5(path: string): string;
  /** GET requests for `path` so far. */
  gets(path: string): RecordedRequest[];
  cut(path: string, afterBytes: number, times?: number): void;
  corrupt(path: string, times?: number): void;
  refuseHead(path: string): void;
  /** Every request for `path` is answered `status` with `headers` and no body (403, a 302 with `location`, …). */
  answer(path: string, status: number, headers?: Record<string, string>): void;
  /** GETs of `path` wait until the returned function is called. */
  hold(path: string): () => void;
  close(): Promise<void>;
}

const CHUNK = 64 * 1024;

/** The generated pattern: a 64 KiB block from `seed`, each chunk stamped with its index (so offsets matter). */
function patternBlock(seed: number): Buffer {
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK / 32; i++) createHash('sha256').update(`${seed}:${i}`).digest().copy(block, i * 32);
  return block;
}

function generatedChunks(size: number, seed: number): (start: number, end: number) => AsyncIterable<Buffer> {
  const block = patternBlock(seed);
  return async function* (start, end) {
    for (let pos = start; pos <= end && pos < size; ) {
      const k = Math.floor(pos / CHUNK);
      const chunk = Buffer.from(block);
      chunk.writeBigUInt64BE(BigInt(k), 0);
      const from = pos - k * CHUNK;
      const to = Math.min(CHUNK, end - k * CHUNK + 1, size - k * CHUNK);
      yield from === 0 && to === CHUNK ? chunk : chunk.subarray(from, to);
      pos = k * CHUNK + to;
    }
  };
}

/** Writes the generated content of `size` bytes with `seed` to `out` (a benchmark's or test's reference copy). */
export async function* generatedContent(size: number, seed = 1): AsyncIterable<Buffer> {
  yield* generatedChunks(size, seed)(0, size - 1);
}

async function md5Of(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const h = createHash('md5');
  for await (const c of chunks) h.update(c);
  return h.digest();
}

async function entryFor(content: ServedContent, options: AddOptions): Promise<Entry> {
  const lastModified = options.lastModified ?? new Date(Math.floor(Date.now() / 1000) * 1000);
  let size: number;
  let chunks: Entry['chunks'];
  if (typeof content === 'string' || content instanceof Uint8Array) {
    const buf = Buffer.from(content);
    size = buf.length;
    chunks = async function* (start, end) {
      if (start <= end) yield buf.subarray(start, end + 1);
    };
  } else if ('file' in content) {
    const file = content.file;
    size = (await stat(file)).size;
    chunks = async function* (start, end) {
      if (start <= end) for await (const c of createReadStream(file, { start, end })) yield c as Buffer;
    };
  } else {
    size = content.generated.size;
    chunks = generatedChunks(size, content.generated.seed ?? 1);
  }
  return { size, md5: await md5Of(chunks(0, size - 1)), options, lastModified, chunks };
}

async function certificate(dir: string): Promise<{ key: Buffer; cert: Buffer; caFile: string }> {
  const keyFile = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  await promisify(execFile)(OPENSSL_BIN, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { key: await readFile(keyFile), cert: await readFile(caFile), caFile };
}

/** Starts the server; see the file comment. */
export async function startHttpsServer(): Promise<HttpsTestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-https-'));
  let tls;
  try {
    tls = await certificate(dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const entries = new Map<string, Entry>();
  const buckets = new Set<string>();
  const requests: RecordedRequest[] = [];
  const cuts = new Map<string, { afterBytes: number; times: number }>();
  const corrupts = new Map<string, number>();
  const noHead = new Set<string>();
  const holds = new Map<string, Promise<void>>();
  const answers = new Map<string, { status: number; headers: Record<string, string> }>();

  const gcsItem = (bucket: string, name: string, e: Entry): Record<string, unknown> => ({
    kind: 'storage#object',
    bucket,
    name,
    size: String(e.size),
    md5Hash: e.md5.toString('base64'),
    etag: `C${e.md5.toString('base64').slice(0, 8)}=`,
    updated: e.lastModified.toISOString(),
  });

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const gcsApi = (res: ServerResponse, u: URL): void => {
    const m = /^\/storage\/v1\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(u.pathname);
    if (!m) return json(res, 404, { error: { code: 404, message: 'Not Found' } });
    const bucket = decodeURIComponent(m[1]);
    if (!buckets.has(bucket)) return json(res, 404, { error: { code: 404, message: 'The specified bucket does not exist.' } });
    if (m[2] !== undefined) {
      const name = decodeURIComponent(m[2]);
      const e = entries.get(`/${bucket}/${name}`);
      return e ? json(res, 200, gcsItem(bucket, name, e)) : json(res, 404, { error: { code: 404, message: 'No such object' } });
    }
    const prefix = u.searchParams.get('prefix') ?? '';
    const start = Number(u.searchParams.get('pageToken') ?? '0');
    const names = [...entries.keys()]
      .filter((p) => p.startsWith(`/${bucket}/`))
      .map((p) => p.slice(bucket.length + 2))
      .filter((n) => n.startsWith(prefix))
      .sort();
    const page = names.slice(start, start + server.gcsPageSize);
    const body: Record<string, unknown> = { kind: 'storage#objects', items: page.map((n) => gcsItem(bucket, n, entries.get(`/${bucket}/${n}`)!)) };
    if (start + server.gcsPageSize < names.length) body.nextPageToken = String(start + server.gcsPageSize);
    json(res, 200, body);
  };

  const serveFile = async (req: IncomingMessage, res: ServerResponse, path: string, e: Entry): Promise<void> => {
    const headers: Record<string, string | number> = { 'accept-ranges': 'bytes', 'last-modified': e.lastModified.toUTCString(), 'content-type': 'application/octet-stream' };
    const etag = e.options.etag ?? 'md5';
    if (etag === 'md5') headers.etag = `"${e.md5.toString('hex')}"`;
    else if (etag !== 'none') headers.etag = etag;
    if (e.options.contentMd5) headers['content-md5'] = e.md5.toString('base64');
    if (req.method === 'HEAD') {
      if (noHead.has(path)) {
        res.writeHead(405, { allow: 'GET' });
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': e.size });
      res.end();
      return;
    }
    const held = holds.get(path);
    if (held) await held;
    let start = 0;
    let end = e.size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), e.size - 1) : e.size - 1;
      if (start >= e.size) {
        res.writeHead(416, { 'content-range': `bytes */${e.size}` });
        res.end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${e.size}`;
    }
    res.writeHead(status, { ...headers, 'content-length': end - start + 1 });
    const cut = cuts.get(path);
    const cutAfter = cut && cut.times > 0 ? cut.afterBytes : Infinity;
    if (cut && cut.times > 0) cut.times--;
    let corrupt = (corrupts.get(path) ?? 0) > 0;
    if (corrupt) corrupts.set(path, corrupts.get(path)! - 1);
    let sent = 0;
    for await (let chunk of e.chunks(start, end)) {
      if (res.destroyed) return;
      if (corrupt && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] ^= 0xff;
        corrupt = false;
      }
      if (sent + chunk.length >= cutAfter) {
        const part = chunk.subarray(0, cutAfter - sent);
        await new Promise<void>((r) => res.write(part, () => r()));
        // A cut connection: the client got `cutAfter` bytes of a longer body.
        res.socket?.destroy();
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', r).once('close', r));
    }
    res.end();
  };

  const https: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push({ method: req.method ?? '', path: u.pathname, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    if (u.pathname.startsWith('/storage/v1/')) return gcsApi(res, u);
    const path = decodeURIComponent(u.pathname);
    const canned = answers.get(path);
    if (canned) {
      res.writeHead(canned.status, { ...canned.headers, 'content-length': 0 });
      res.end();
      return;
    }
    const e = entries.get(path);
    if (!e || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(e ? 405 : 404, { 'content-length': 0 });
      res.end();
      return;
    }
    serveFile(req, res, path, e).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    https.once('error', reject);
    https.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (https.address() as { port: number }).port;
  const origin = `https://127.0.0.1:${port}`;
  let closed = false;
  const releases: Array<() => void> = [];

  const server: HttpsTestServer = {
    origin,
    caFile: tls.caFile,
    requests,
    gcsPageSize: 1000,
    url: (path) => `${origin}${path}`,
    async add(path, content, options = {}) {
      entries.set(path, await entryFor(content, options));
      const bucket = /^\/([^/]+)\//.exec(path)?.[1];
      if (bucket) buckets.add(bucket);
    },
    addBucket: (name) => void buckets.add(name),
    md5: (path) => entries.get(path)!.md5.toString('hex'),
    gets: (path) => requests.filter((r) => r.method === 'GET' && r.path === path),
    cut: (path, afterBytes, times = 1) => void cuts.set(path, { afterBytes, times }),
    corrupt: (path, times = Infinity) => void corrupts.set(path, times),
    refuseHead: (path) => void noHead.add(path),
    answer: (path, status, headers = {}) => void answers.set(path, { status, headers }),
    hold(path) {
      let release!: () => void;
      holds.set(path, new Promise<void>((r) => (release = r)));
      const done = (): void => {
        holds.delete(path);
        release();
      };
      releases.push(done);
      return done;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const r of releases) r();
      const stopped = new Promise<void>((r) => https.close(() => r()));
      https.closeAllConnections();
      await stopped;
      await rm(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}
