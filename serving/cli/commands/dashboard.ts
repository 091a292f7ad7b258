import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { controlToken, DEFAULT_CONTROL_URL } from '../../client/myelin-client.js';
import { dashboardUrl } from '../../dashboard/dashboard-url.js';
import { ExitError } from '../exit-error.js';

export interface DashboardOptions {
  /** Control API URL: `--url`, else `MYELIN_URL`, else http://127.0.0.1:8889. */
  readonly url?: string;
  readonly stateDir?: string;
  /** Also open the URL with the desktop's opener. */
  readonly open: boolean;
  readonly stdout: Writable;
  readonly stderr?: Writable;
  /** The opener command (tests); default `xdg-open`, `open` on macOS. */
  readonly opener?: string;
}

/**
 * `myelin dashboard [--open]`: checks that the daemon answers, prints its dashboard URL with the login
 * token (Jupyter's pattern: opening it trades the token for a session cookie) and returns it. The token
 * is the CLI's (`MYELIN_TOKEN`, else `<state-dir>/token`). Throws `ExitError(1)` when the daemon does
 * not answer or no token is found; a browser that cannot be opened is a note on stderr, not an error.
 */
export async function dashboard(o: DashboardOptions): Promise<string> {
  const url = (o.url ?? process.env.MYELIN_URL ?? DEFAULT_CONTROL_URL).replace(/\/+$/, '');
  try {
    const res = await fetch(`${url}/healthz`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    throw new ExitError(1, `error: cannot reach the myelin daemon at ${url} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); start it with \`myelin up\` or pick another with --url / MYELIN_URL`);
  }
  const token = await controlToken(url, { stateDir: o.stateDir });
  if (!token) throw new ExitError(1, `error: no token for ${url}: set MYELIN_TOKEN, or --state-dir to the daemon's state folder (its token file)`);
  const page = dashboardUrl(url, token);
  o.stdout.write(`${page}\n`);
  if (o.open) {
    const opener = o.opener ?? (process.platform === 'darwin' ? 'open' : 'xdg-open');
    await new Promise<void>((resolve) => {
      const child = spawn(opener, [page], { stdio: 'ignore', detached: true });
      child.once('error', (err) => {
        o.stderr?.write(`note: could not open a browser (${opener}: ${(err as NodeJS.ErrnoException).code ?? err.message}); open the URL above\n`);
        resolve();
      });
      child.once('spawn', () => {
        child.unref();
        resolve();
      });
    });
  }
  return page;
}
