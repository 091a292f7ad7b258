import { EngineError } from '../../core/errors.js';
import { MyelinClient } from '../client/myelin-client.js';
import { ExitError } from './exit-error.js';

export { DEFAULT_CONTROL_URL } from '../client/myelin-client.js';

export interface ClientOptions {
  /** Control API URL: `--url`, else `MYELIN_URL`, else http://127.0.0.1:8889. */
  readonly url?: string;
  /** Bearer token: `MYELIN_TOKEN`, else `<state-dir>/token` when it exists. */
  readonly token?: string;
  readonly stateDir?: string;
}

/**
 * The CLI's commands talk to the daemon through the package's own `MyelinClient`: one implementation
 * of the control API's wire protocol. This adds what a person at a shell needs on top of its coded
 * errors: what to do next.
 */
export function daemonClient(options: ClientOptions): MyelinClient {
  return new MyelinClient({ url: options.url, token: options.token, stateDir: options.stateDir });
}

/** Runs `work`, turning a daemon that cannot be reached (or does not answer) into a message with the next step. */
export async function withHints<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw hinted(err);
  }
}

/** The same error, or an `ExitError` saying what to do when the daemon is not there or slow. */
export function hinted(err: unknown): unknown {
  if (!(err instanceof EngineError)) return err;
  if (err.code === 'ENG_DAEMON_UNREACHABLE') return new ExitError(1, `error: ${err.message}; start it with \`myelin up\` or pick another with --url / MYELIN_URL`);
  if (err.code === 'ENG_DAEMON_TIMEOUT') return new ExitError(1, `error: ${err.message}: see \`myelin get\` and \`myelin events\``);
  return err;
}
