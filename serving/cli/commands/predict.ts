import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import type { ApiDetail } from '../../daemon/daemon-service.js';
import { DaemonClient, type ClientOptions } from '../daemon-client.js';
import { ExitError } from '../exit-error.js';

export interface PredictOptions extends ClientOptions {
  readonly api: string;
  /** A JSON file, or `-` for standard input. */
  readonly file: string;
  readonly stdin: Readable;
  readonly stdout: Writable;
}

/** `myelin predict <api> <json-file|->`: POSTs the JSON to the API's endpoint and prints the response body. */
export async function predict(options: PredictOptions): Promise<{ status: number; body: string }> {
  const client = new DaemonClient(options);
  const detail = await client.json<ApiDetail>('GET', `/v1/apis/${encodeURIComponent(options.api)}`);
  let text: string;
  if (options.file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of options.stdin) chunks.push(Buffer.from(c as Buffer));
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      throw new ExitError(1, `error: cannot read ${options.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw new ExitError(1, `error: ${options.file === '-' ? 'standard input' : options.file} is not valid JSON: ${(err as Error).message}`);
  }
  let res: Response;
  try {
    res = await fetch(detail.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  } catch (err) {
    throw new ExitError(1, `error: cannot reach ${detail.url}: ${(err as Error).message}`);
  }
  const body = await res.text();
  options.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
  if (!res.ok) throw new ExitError(1, `error: ${options.api} answered HTTP ${res.status}`);
  return { status: res.status, body };
}
