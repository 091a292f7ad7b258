/**
 * A real S3-compatible server for tests and benchmarks: s3rver 3.7 on a random 127.0.0.1 port with
 * its store in a temporary directory. Buckets are created at start; objects are put through the real
 * @aws-sdk/client-s3 (signed with s3rver's built-in credentials S3RVER/S3RVER, path-style). `close()`
 * stops the server and removes the directory; `await using` does the same.
 *
 * What s3rver checks (3.7.1, lib/middleware/authentication.js): an unknown access key id is refused
 * (`InvalidAccessKeyId`, 403); a V4 signature is not verified (any secret passes with a known key id);
 * a request without any signature is served as an anonymous one, on every bucket (it has no ACLs).
 *
 * `startS3Server` runs s3rver in this process; `spawnS3Server` runs it in a child process (this file,
 * run with `node --openssl-legacy-provider --import tsx`), so that a client does not share its event
 * loop. Prefer the child: s3rver makes ListObjectsV2 continuation tokens with DES, which Node 20's
 * OpenSSL 3 refuses without the legacy provider, so in-process s3rver fails (InternalError) on any
 * listing with more than one page.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** s3rver's built-in account (lib/models/account.js). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3ServerOptions {
  /** Buckets to create at start. */
  readonly buckets?: readonly string[];
}

export interface S3TestServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`. */
  readonly endpoint: string;
  /** Puts one object: bytes, or the file at `{ file }` (streamed, never held in memory). */
  put(bucket: string, key: string, body: Uint8Array | string | { readonly file: string }): Promise<void>;
  /** A client signed with s3rver's credentials, path-style, for the test's own calls. */
  readonly client: S3Client;
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

function clientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function putter(client: S3Client): S3TestServer['put'] {
  return async (bucket, key, body) => {
    if (typeof body === 'object' && 'file' in body) {
      const size = (await stat(body.file)).size;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(body.file), ContentLength: size }));
    } else {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
  };
}

/** Starts s3rver in this process on a random loopback port, with `buckets` created. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const directory = await mkdtemp(join(tmpdir(), 'myelin-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  let address: { port: number };
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = clientFor(endpoint);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    client.destroy();
    await server.close();
    await rm(directory, { recursive: true, force: true });
  };
  return { endpoint, client, put: putter(client), close, [Symbol.asyncDispose]: close };
}

/**
 * Starts s3rver in a child process (`node --import tsx` on this file) and waits for it to print its
 * port. `close()` ends the child by its PID and waits for its exit (it removes its own directory).
 */
export async function spawnS3Server(options: S3ServerOptions = {}): Promise<S3TestServer & { readonly pid: number }> {
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', fileURLToPath(import.meta.url), '--serve', JSON.stringify(options.buckets ?? [])], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /^listening (\S+)$/m.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`s3rver child exited early (code ${code}, signal ${signal}): ${out}`)));
    child.once('error', reject);
  });
  const client = clientFor(endpoint);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    client.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      // Closing stdin asks the child to stop and clean up; SIGKILL by PID if it does not.
      child.stdin!.end();
      const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  return { endpoint, client, put: putter(client), close, pid: child.pid!, [Symbol.asyncDispose]: close };
}

// The child side of spawnS3Server.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--serve') {
  const server = await startS3Server({ buckets: JSON.parse(process.argv[3] ?? '[]') as string[] });
  process.stdout.write(`listening ${server.endpoint}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void server.close().then(() => process.exit(0));
  });
}
