/**
 * The `https` model store: one model file at an `https://` (or `http://`) URL, and public Google Cloud
 * Storage objects at `gs://bucket/prefix` read over HTTPS without Google credentials.
 *
 * - `https://host/path/model.onnx` names ONE file: `list` asks with HEAD (and when HEAD is refused,
 *   with `GET` + `Range: bytes=0-0`) for its size, ETag, `Content-MD5` and `Last-Modified`; a URL
 *   ending in `/` is a folder, which plain HTTP(S) cannot list (an error says so). Redirects are
 *   followed (up to 5). `read` is a GET with `Range: bytes=<offset>-` to resume.
 * - `gs://bucket/prefix`: the GCS JSON API, `GET {base}/storage/v1/b/<bucket>/o/<object>` (does the URL
 *   name an object?) and `GET {base}/storage/v1/b/<bucket>/o?prefix=…&pageToken=…` (the objects below
 *   it), `md5Hash` (base64) as the MD5; objects are read from `GET {base}/<bucket>/<object>`. `{base}`
 *   is `https://storage.googleapis.com` unless env `MYELIN_GCS_ENDPOINT` says otherwise.
 * - TLS trust: the system's roots (and NODE_EXTRA_CA_CERTS, which Node reads at start) plus the PEM
 *   file named by env `MYELIN_MODEL_CA_FILE` (read on the first request), for a private CA.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { ModelStoreError, type ModelStoreContribution, type StoredObject } from '../../../core/ports/model-store.js';

export const DEFAULT_GCS_ENDPOINT = 'https://storage.googleapis.com';

export interface HttpsModelStoreOptions {
  /** Where `MYELIN_GCS_ENDPOINT` and `MYELIN_MODEL_CA_FILE` are read from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A request fails after this long without a byte (ms); default 30 000. */
  readonly idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;
/** JSON answers (GCS listings) larger than this are refused: a listing page is well below. */
const MAX_JSON_BYTES = 32 * 1024 * 1024;

/** Hex of a base64 digest (`Content-MD5`, GCS `md5Hash`), or undefined when it is not a 16-byte one. */
export function base64Md5ToHex(b64: string | undefined): string | undefined {
  if (!b64) return undefined;
  const buf = Buffer.from(b64.trim(), 'base64');
  return buf.length === 16 ? buf.toString('hex') : undefined;
}

/** `{ etag, md5 }` of HTTP headers: MD5 from `Content-MD5`, else from a strong ETag of 32 hex digits. */
export function httpEtag(etagHeader: string | undefined, contentMd5: string | undefined): { etag?: string; md5?: string } {
  const out: { etag?: string; md5?: string } = {};
  const weak = etagHeader?.startsWith('W/') ?? false;
  const etag = etagHeader?.replace(/^W\//, '').replace(/"/g, '');
  if (etag) out.etag = weak ? `W/${etag}` : etag;
  const md5 = base64Md5ToHex(contentMd5) ?? (etag && !weak && /^[0-9a-f]{32}$/i.test(etag) ? etag.toLowerCase() : undefined);
  if (md5) out.md5 = md5;
  return out;
}

function statusError(url: string, status: number, what: string): ModelStoreError {
  if (status === 401 || status === 403) return new ModelStoreError(url, `${url}: the server refused access (HTTP ${status}) to ${what}`, { code: 'ENG_MODEL_DENIED' });
  if (status === 404 || status === 410) return new ModelStoreError(url, `${url}: not found (HTTP ${status})`, { code: 'ENG_MODEL_NOT_FOUND' });
  return new ModelStoreError(url, `${url}: the server answered HTTP ${status} to ${what}`, { code: 'ENG_MODEL_STORE' });
}

function networkError(url: string, err: unknown): ModelStoreError {
  if (err instanceof ModelStoreError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return new ModelStoreError(url, `${url}: the request was aborted`, { code: 'ENG_MODEL_STORE', cause: err });
  return new ModelStoreError(url, `${url}: request failed: ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`, { code: 'ENG_MODEL_STORE', cause: err });
}

/** `gs://bucket/a/b` → `{ bucket, key: 'a/b' }`. */
export function parseGsUrl(url: string): { bucket: string; key: string } {
  const m = /^gs:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (!m) throw new ModelStoreError(url, `${url}: not a Google Cloud Storage URL (expected gs://<bucket>/<path>)`);
  return { bucket: m[1], key: m[2] };
}

/** `a/b c/d` → `a/b%20c/d`: each path segment URL-encoded, the `/` kept. */
const encodePath = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

interface GcsItem {
  readonly name: string;
  readonly size?: string | number;
  readonly md5Hash?: string;
  readonly etag?: string;
  readonly updated?: string;
}

function gcsObject(key: string, item: GcsItem): StoredObject {
  const md5 = base64Md5ToHex(item.md5Hash);
  const updated = item.updated ? Date.parse(item.updated) : Number.NaN;
  return {
    key,
    size: Number(item.size ?? 0),
    ...(item.etag ? { etag: item.etag } : {}),
    ...(md5 ? { md5 } : {}),
    ...(Number.isFinite(updated) ? { lastModified: updated } : {}),
  };
}

/** `ModelStoreContribution` for `https://`, `http://` (one file each) and public `gs://` (kind `https`). */
export class HttpsModelStore implements ModelStoreContribution {
  readonly kind = 'https';
  readonly schemes = ['https', 'http', 'gs'] as const;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly idleTimeoutMs: number;
  private agents: { https: https.Agent; http: http.Agent } | undefined;

  constructor(options: HttpsModelStoreOptions = {}) {
    this.env = options.env ?? process.env;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  }

  private gcsBase(): string {
    return (this.env.MYELIN_GCS_ENDPOINT || DEFAULT_GCS_ENDPOINT).replace(/\/+$/, '');
  }

  private agentsFor(url: string): { https: https.Agent; http: http.Agent } {
    if (!this.agents) {
      const caFile = this.env.MYELIN_MODEL_CA_FILE;
      let ca: string[] | undefined;
      if (caFile) {
        try {
          ca = [...rootCertificates, readFileSync(caFile, 'utf8')];
          const extra = this.env.NODE_EXTRA_CA_CERTS;
          if (extra) ca.push(readFileSync(extra, 'utf8'));
        } catch (err) {
          throw new ModelStoreError(url, `${url}: cannot read the CA certificates named by MYELIN_MODEL_CA_FILE (${caFile}): ${(err as Error).message}`, { cause: err });
        }
      }
      this.agents = {
        https: new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) }),
        http: new http.Agent({ keepAlive: true }),
      };
    }
    return this.agents;
  }

  /** One request, following redirects; resolves with the final response (its body unread). */
  private request(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, signal: AbortSignal | undefined, shownUrl: string, redirects = 0): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch (err) {
        reject(new ModelStoreError(shownUrl, `${shownUrl}: not a valid URL`, { cause: err }));
        return;
      }
      const secure = target.protocol === 'https:';
      if (!secure && target.protocol !== 'http:') {
        reject(new ModelStoreError(shownUrl, `${shownUrl}: redirected to an unsupported URL ${url}`));
        return;
      }
      let agents;
      try {
        agents = this.agentsFor(shownUrl);
      } catch (err) {
        reject(err);
        return;
      }
      const req = (secure ? https : http).request(
        target,
        { method, headers: { 'accept-encoding': 'identity', 'user-agent': 'myelin', ...headers }, agent: secure ? agents.https : agents.http, ...(signal ? { signal } : {}) },
        (res) => {
          const status = res.statusCode ?? 0;
          if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
            res.resume();
            if (redirects >= MAX_REDIRECTS) {
              reject(new ModelStoreError(shownUrl, `${shownUrl}: more than ${MAX_REDIRECTS} redirects`));
              return;
            }
            const next = new URL(res.headers.location, target).toString();
            this.request(method, next, headers, signal, shownUrl, redirects + 1).then(resolve, reject);
            return;
          }
          resolve(res);
        },
      );
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(new ModelStoreError(shownUrl, `${shownUrl}: no data for ${this.idleTimeoutMs} ms`)));
      req.once('error', (err) => reject(networkError(shownUrl, err)));
      req.end();
    });
  }

  private async json<T>(url: string, shownUrl: string, what: string, signal?: AbortSignal): Promise<{ status: number; body?: T }> {
    const res = await this.request('GET', url, { accept: 'application/json' }, signal, shownUrl);
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      res.resume();
      return { status };
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > MAX_JSON_BYTES) {
          res.destroy();
          throw new ModelStoreError(shownUrl, `${shownUrl}: the answer to ${what} is larger than ${MAX_JSON_BYTES} bytes`);
        }
        chunks.push(c);
      }
      return { status, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T };
    } catch (err) {
      if (err instanceof SyntaxError) throw new ModelStoreError(shownUrl, `${shownUrl}: the answer to ${what} is not JSON`, { cause: err });
      throw networkError(shownUrl, err);
    }
  }

  async list(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    return /^gs:/i.test(url) ? this.listGcs(url, signal) : this.listHttp(url, signal);
  }

  async read(url: string, object: StoredObject, options: { readonly offset?: number; readonly signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    const objectUrl = object.key === '' ? url : `${url.replace(/\/?$/, '/')}${object.key}`;
    let target = objectUrl;
    if (/^gs:/i.test(objectUrl)) {
      const { bucket, key } = parseGsUrl(objectUrl);
      target = `${this.gcsBase()}/${encodeURIComponent(bucket)}/${encodePath(key)}`;
    }
    return this.readHttp(target, objectUrl, object, options.offset ?? 0, options.signal);
  }

  private async listHttp(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    if (url.endsWith('/')) {
      throw new ModelStoreError(
        url,
        `${url}: a folder cannot be listed over plain HTTP(S); name the model file itself (e.g. ${url}model.onnx), or put the model in S3 (s3://) or Google Cloud Storage (gs://)`,
        { code: 'ENG_MODEL_STORE' },
      );
    }
    const head = await this.request('HEAD', url, {}, signal, url);
    head.resume();
    const hs = head.statusCode ?? 0;
    if (hs === 404 || hs === 410) return [];
    const length = head.headers['content-length'];
    if (hs >= 200 && hs < 300 && length !== undefined) return [this.httpObject(head, Number(length))];
    // HEAD refused (405, 501, a URL presigned for GET only, …) or no Content-Length: ask for one byte.
    const get = await this.request('GET', url, { range: 'bytes=0-0' }, signal, url);
    get.destroy();
    const gs = get.statusCode ?? 0;
    if (gs === 404 || gs === 410) return [];
    if (gs === 206) {
      const total = /\/(\d+)\s*$/.exec(String(get.headers['content-range'] ?? ''));
      if (total) return [this.httpObject(get, Number(total[1]))];
    }
    if (gs === 416) {
      // Not even one byte: an empty file (`Content-Range: bytes */0`).
      const total = /\*\/(\d+)/.exec(String(get.headers['content-range'] ?? ''));
      if (total) return [this.httpObject(get, Number(total[1]))];
    }
    if (gs === 200 && get.headers['content-length'] !== undefined) return [this.httpObject(get, Number(get.headers['content-length']))];
    if (gs >= 200 && gs < 300) throw new ModelStoreError(url, `${url}: the server does not tell the file's size (no Content-Length or Content-Range)`);
    throw statusError(url, gs, 'a request for the model file');
  }

  private httpObject(res: IncomingMessage, size: number): StoredObject {
    const h = res.headers;
    const modified = h['last-modified'] ? Date.parse(h['last-modified']) : Number.NaN;
    return {
      key: '',
      size,
      ...httpEtag(h.etag, typeof h['content-md5'] === 'string' ? h['content-md5'] : undefined),
      ...(Number.isFinite(modified) ? { lastModified: modified } : {}),
    };
  }

  private async listGcs(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    const { bucket, key } = parseGsUrl(url);
    const api = `${this.gcsBase()}/storage/v1/b/${encodeURIComponent(bucket)}/o`;
    if (key !== '' && !key.endsWith('/')) {
      // Does the URL name an object (gs://bucket/iris.onnx)?
      const one = await this.json<GcsItem>(`${api}/${encodeURIComponent(key)}`, url, 'a metadata request', signal);
      if (one.status === 200 && one.body) return [gcsObject('', one.body)];
      if (one.status !== 404) throw this.gcsStatusError(url, bucket, one.status);
    }
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const out: StoredObject[] = [];
    let pageToken: string | undefined;
    do {
      const q = new URLSearchParams({ prefix });
      if (pageToken) q.set('pageToken', pageToken);
      const page = await this.json<{ items?: GcsItem[]; nextPageToken?: string }>(`${api}?${q}`, url, 'a listing', signal);
      if (page.status !== 200 || !page.body) throw this.gcsStatusError(url, bucket, page.status);
      for (const item of page.body.items ?? []) {
        if (!item.name?.startsWith(prefix)) continue;
        const rel = item.name.slice(prefix.length);
        if (rel === '' || rel.endsWith('/')) continue;
        out.push(gcsObject(rel, item));
      }
      pageToken = page.body.nextPageToken || undefined;
    } while (pageToken);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private gcsStatusError(url: string, bucket: string, status: number): ModelStoreError {
    if (status === 404) return new ModelStoreError(url, `${url}: bucket "${bucket}" does not exist`, { code: 'ENG_MODEL_NOT_FOUND' });
    if (status === 401 || status === 403) {
      return new ModelStoreError(url, `${url}: Google Cloud Storage refused access (HTTP ${status}); gs:// models are read without Google credentials, so the objects must be public (allUsers: Storage Object Viewer)`, { code: 'ENG_MODEL_DENIED' });
    }
    return statusError(url, status, 'a listing');
  }

  private async readHttp(target: string, shownUrl: string, object: StoredObject, offset: number, signal: AbortSignal | undefined): Promise<AsyncIterable<Uint8Array>> {
    if (offset > 0 && offset >= object.size) return (async function* () {})();
    const res = await this.request('GET', target, offset > 0 ? { range: `bytes=${offset}-` } : {}, signal, shownUrl);
    const status = res.statusCode ?? 0;
    if (status === 206) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (start && Number(start[1]) !== offset) {
        res.destroy();
        throw new ModelStoreError(shownUrl, `${shownUrl}: asked for bytes from ${offset}, the server sent ${res.headers['content-range']}`);
      }
      return res;
    }
    if (status === 200) return offset > 0 ? skipBytes(res, offset) : res;
    if (status === 416) {
      res.resume();
      return (async function* () {})();
    }
    res.resume();
    throw statusError(shownUrl, status, 'a download of the model file');
  }

  /** Ends idle keep-alive sockets. */
  async close(): Promise<void> {
    this.agents?.https.destroy();
    this.agents?.http.destroy();
    this.agents = undefined;
  }
}

/** The bytes of `source` after the first `n` (a server that ignored `Range` sent them all). */
async function* skipBytes(source: AsyncIterable<Uint8Array>, n: number): AsyncIterable<Uint8Array> {
  let left = n;
  for await (const chunk of source) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}
