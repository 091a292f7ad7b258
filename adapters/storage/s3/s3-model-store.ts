/**
 * The `s3` model store: `s3://bucket/prefix` on AWS S3 or any S3-compatible server, through
 * @aws-sdk/client-s3 with the SDK's standard configuration:
 *
 * - credentials: the SDK's default chain (env `AWS_ACCESS_KEY_ID`/…, `AWS_PROFILE` and the shared
 *   files, SSO, web identity, ECS/EC2 roles). When the chain finds none, requests go unsigned
 *   (anonymous), as Cortex's examples read public buckets: a no-op signer, so no `Authorization`.
 * - region: `AWS_REGION` (else `AWS_DEFAULT_REGION`, else `us-east-1`); requests to a bucket in another
 *   region follow S3's redirect (`followRegionRedirects`).
 * - endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, for an S3-compatible server (MinIO,
 *   Ceph, s3rver); then path-style addressing (`forcePathStyle`).
 * - checksums `WHEN_REQUIRED` both ways (DESIGN.md: S3-compatible servers reject or lack the newer
 *   default checksums); the model cache checks sizes and MD5s itself.
 *
 * The SDK is loaded by dynamic import on the first S3 call, so a process that serves local models does
 * not load it. SDK types stay in this file (SG 5.3).
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ModelStoreError, type ModelStoreContribution, type StoredObject } from '../../../core/ports/model-store.js';

type ClientS3 = typeof import('@aws-sdk/client-s3');

export interface S3ModelStoreOptions {
  /** Where region and endpoint are read from; default `process.env` (credentials: the SDK's chain). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Keys per ListObjectsV2 page; default the server's (1000 on S3). Tests use small pages. */
  readonly maxKeysPerPage?: number;
}

/** `s3://bucket/some/prefix` → `{ bucket, key: 'some/prefix' }`. Throws `ModelStoreError` without a bucket. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (!m || m[1] === '') throw new ModelStoreError(url, `${url}: not an S3 URL (expected s3://<bucket>/<path>)`, { code: 'ENG_MODEL_STORE' });
  return { bucket: m[1], key: m[2] };
}

/** An ETag without quotes; `md5` too when it is one (a multipart upload's ETag has a `-<parts>` suffix). */
export function s3Etag(raw: string | undefined): { etag?: string; md5?: string } {
  if (!raw) return {};
  const etag = raw.replace(/"/g, '');
  return /^[0-9a-f]{32}$/i.test(etag) ? { etag, md5: etag.toLowerCase() } : { etag };
}

const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled', 'Forbidden']);

interface SdkError {
  readonly name?: string;
  readonly message?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** Wraps an SDK error into a `ModelStoreError` naming `url` (and the bucket, when it is missing). */
export function s3Error(url: string, err: unknown, endpoint: string | undefined): ModelStoreError {
  if (err instanceof ModelStoreError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const detail = e.message && e.message !== name && e.message !== 'UnknownError' ? `${name}: ${e.message}` : `${name}${status ? ` (HTTP ${status})` : ''}`;
  if (status === 403 || DENIED.has(name)) {
    return new ModelStoreError(url, `${url}: S3 refused access (${detail}); check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, …) and the bucket's policy`, { code: 'ENG_MODEL_DENIED', cause: err });
  }
  if (name === 'NoSuchBucket') {
    const { bucket } = parseS3Url(url);
    return new ModelStoreError(url, `${url}: bucket "${bucket}" does not exist${endpoint ? ` on ${endpoint}` : ''}`, { code: 'ENG_MODEL_NOT_FOUND', cause: err });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new ModelStoreError(url, `${url}: no such object`, { code: 'ENG_MODEL_NOT_FOUND', cause: err });
  }
  const network = e.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  const where = endpoint ? ` (endpoint ${endpoint})` : '';
  return new ModelStoreError(url, `${url}: S3 request failed${where}: ${network && !detail.includes(network) ? `${network}: ` : ''}${detail}`, { code: 'ENG_MODEL_STORE', cause: err });
}

function isCredentialsMissing(err: unknown): boolean {
  return (err as { name?: string })?.name === 'CredentialsProviderError';
}

/** `ModelStoreContribution` for `s3://` URLs (kind `s3`). */
export class S3ModelStore implements ModelStoreContribution {
  readonly kind = 's3';
  readonly schemes = ['s3'] as const;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly maxKeys: number | undefined;
  private client: Promise<{ sdk: ClientS3; client: S3Client; anonymous: boolean }> | undefined;

  constructor(options: S3ModelStoreOptions = {}) {
    this.env = options.env ?? process.env;
    this.maxKeys = options.maxKeysPerPage;
  }

  /** The endpoint requests go to when one is configured (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`). */
  get endpoint(): string | undefined {
    return this.env.AWS_ENDPOINT_URL_S3 || this.env.AWS_ENDPOINT_URL || undefined;
  }

  /** True once the store found no credentials and sends unsigned requests; undefined before the first call. */
  async isAnonymous(): Promise<boolean> {
    return (await this.sdk()).anonymous;
  }

  private sdk(): Promise<{ sdk: ClientS3; client: S3Client; anonymous: boolean }> {
    this.client ??= (async () => {
      const sdk = await import('@aws-sdk/client-s3');
      const endpoint = this.endpoint;
      const config: S3ClientConfig = {
        region: this.env.AWS_REGION || this.env.AWS_DEFAULT_REGION || 'us-east-1',
        followRegionRedirects: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      };
      const signed = new sdk.S3Client(config);
      try {
        await signed.config.credentials();
        return { sdk, client: signed, anonymous: false };
      } catch (err) {
        if (!isCredentialsMissing(err)) throw err;
        signed.destroy();
        // No credentials anywhere in the chain: unsigned requests, which S3 serves for public objects.
        const anonymous = new sdk.S3Client({
          ...config,
          credentials: async () => ({ accessKeyId: '', secretAccessKey: '' }),
          signer: { sign: async (request) => request },
        });
        return { sdk, client: anonymous, anonymous: true };
      }
    })();
    // A failure to set up (not a missing credential) is not cached: the next call tries again.
    this.client.catch(() => {
      this.client = undefined;
    });
    return this.client;
  }

  async list(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    const { bucket, key } = parseS3Url(url);
    const { sdk, client } = await this.sdk().catch((err) => {
      throw s3Error(url, err, this.endpoint);
    });
    if (key !== '' && !key.endsWith('/')) {
      // The URL may name an object (s3://bucket/iris.onnx); else it is a folder without its `/`.
      try {
        const head = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        return [{ key: '', size: head.ContentLength ?? 0, ...s3Etag(head.ETag), ...(head.LastModified ? { lastModified: head.LastModified.getTime() } : {}) }];
      } catch (err) {
        const mapped = s3Error(url, err, this.endpoint);
        // 404: no such object (or no such bucket: the listing says which); 403: S3 answers that for a
        // missing key without s3:ListBucket, so the listing decides too.
        if (mapped.code !== 'ENG_MODEL_NOT_FOUND' && mapped.code !== 'ENG_MODEL_DENIED') throw mapped;
      }
    }
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const out: StoredObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(this.maxKeys ? { MaxKeys: this.maxKeys } : {}), ...(token ? { ContinuationToken: token } : {}) }), { abortSignal: signal });
        for (const o of page.Contents ?? []) {
          if (!o.Key || !o.Key.startsWith(prefix)) continue;
          const rel = o.Key.slice(prefix.length);
          // Zero-byte `folder/` markers (the S3 console's "Create folder") are not files.
          if (rel === '' || rel.endsWith('/')) continue;
          out.push({ key: rel, size: o.Size ?? 0, ...s3Etag(o.ETag), ...(o.LastModified ? { lastModified: o.LastModified.getTime() } : {}) });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw s3Error(url, err, this.endpoint);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async read(url: string, object: StoredObject, options: { readonly offset?: number; readonly signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    const objectUrl = object.key === '' ? url : `${url.replace(/\/?$/, '/')}${object.key}`;
    const { bucket, key } = parseS3Url(objectUrl);
    const offset = options.offset ?? 0;
    // S3 answers 416 for a range starting at the end; there is nothing left to read.
    if (offset > 0 && offset >= object.size) return emptyStream();
    const { sdk, client } = await this.sdk().catch((err) => {
      throw s3Error(objectUrl, err, this.endpoint);
    });
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }), { abortSignal: options.signal });
      if (!res.Body) throw new ModelStoreError(objectUrl, `${objectUrl}: S3 returned no body`);
      return res.Body as AsyncIterable<Uint8Array>;
    } catch (err) {
      throw s3Error(objectUrl, err, this.endpoint);
    }
  }

  /** Ends the SDK client's sockets. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) (await c.catch(() => undefined))?.client.destroy();
  }
}

async function* emptyStream(): AsyncIterable<Uint8Array> {
  // Nothing to yield.
}
