import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { EngineError } from '../../../core/errors.js';
import { daemonClient, withHints, type ClientOptions } from '../daemon-client.js';
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
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (err) {
    throw new ExitError(1, `error: ${options.file === '-' ? 'standard input' : options.file} is not valid JSON: ${(err as Error).message}`);
  }
  const res = await withHints(() => daemonClient(options).predict(options.api, payload)).catch((err: unknown) => {
    if (err instanceof EngineError && err.code === 'ENG_API_UNREACHABLE') throw new ExitError(1, `error: ${err.message}`);
    throw err;
  });
  const body = res.text;
  options.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
  if (res.status < 200 || res.status >= 300) throw new ExitError(1, `error: ${options.api} answered HTTP ${res.status}`);
  return { status: res.status, body };
}
