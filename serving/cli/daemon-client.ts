import { ConfigError, EngineError, type ConfigProblem } from '../../core/errors.js';
import { controlToken } from '../client/myelin-client.js';
import { ExitError } from './exit-error.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:8889';

export interface ClientOptions {
  /** Control API URL: `--url`, else `MYELIN_URL`, else http://127.0.0.1:8889. */
  readonly url?: string;
  /** Bearer token: `MYELIN_TOKEN`, else `<state-dir>/token` when it exists. */
  readonly token?: string;
  readonly stateDir?: string;
}

/** Talks to a daemon's control API (serving/daemon/control-api.ts). */
export class DaemonClient {
  readonly baseUrl: string;
  private tokenPromise?: Promise<string | undefined>;
  constructor(private readonly options: ClientOptions = {}) {
    this.baseUrl = (options.url ?? process.env.MYELIN_URL ?? DEFAULT_CONTROL_URL).replace(/\/+$/, '');
  }

  private token(): Promise<string | undefined> {
    this.tokenPromise ??= controlToken(this.baseUrl, this.options);
    return this.tokenPromise;
  }

  /** Sends a request; throws a readable `ExitError` when the daemon is not reachable or answers an error. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = await this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    // The control API accepts changes as JSON only (a browser cannot send that cross-origin unasked).
    if (body !== undefined || (method !== 'GET' && method !== 'HEAD')) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      if ((err as { cause?: { code?: string } }).cause?.code === 'UND_ERR_HEADERS_TIMEOUT') {
        // fetch waits 5 minutes for an answer; the daemon goes on with the request meanwhile.
        throw new ExitError(1, `error: the myelin daemon at ${this.baseUrl} did not answer ${method} ${path} within 5 minutes (a long requirements.txt install or model download?); it goes on with it: see \`myelin get\` and \`myelin events\``);
      }
      throw new ExitError(1, `error: cannot reach the myelin daemon at ${this.baseUrl} (${describeFetchError(err)}); start it with \`myelin up\` or pick another with --url / MYELIN_URL`);
    }
    if (!res.ok) {
      let payload: { error?: string; problems?: ConfigProblem[]; code?: string } = {};
      try {
        payload = (await res.json()) as typeof payload;
      } catch {
        // not JSON
      }
      if (payload.problems && payload.problems.length > 0) throw new ConfigError(payload.problems);
      throw new EngineError(payload.code ?? `ENG_HTTP_${res.status}`, payload.error ?? `${method} ${path}: HTTP ${res.status}`);
    }
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    return (await res.json()) as T;
  }
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** Reads a fetch body line by line (logs, server-sent events): the client's own reader. */
export { readLines } from '../client/myelin-client.js';
