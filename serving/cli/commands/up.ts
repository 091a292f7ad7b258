import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { CLI_ENTRY, FROM_SOURCES } from '../../../adapters/fs/package-root.js';
import { DEFAULT_PYTHON, PYTHON_ENV } from '../../../core/predictor/python-predictor.js';
import { createRootLogger } from '../../composition/logger.js';
import { defaultStateDir } from '../../daemon/state-store.js';
import { dashboardUrl } from '../../dashboard/dashboard-url.js';
import { ExitError } from '../exit-error.js';

export interface UpOptions {
  readonly target: 'local' | 'kubernetes';
  readonly nats?: string;
  /** `--in-cluster` (kubernetes target): the pod's service account. */
  readonly inCluster?: boolean;
  /** `--namespace` (kubernetes target). */
  readonly namespace?: string;
  /** `--image` (kubernetes target): the replica image. */
  readonly image?: string;
  /** `--pod-service-account` (kubernetes target): the ServiceAccount of the API pods. */
  readonly podServiceAccount?: string;
  /** `--image-pull-secret` (kubernetes target, repeatable): image pull secrets of the API pods. */
  readonly imagePullSecrets?: readonly string[];
  readonly stateDir?: string;
  readonly host: string;
  readonly port: number;
  readonly gatewayHost: string;
  readonly gatewayPort: number;
  /** `--headers-timeout`, `--request-timeout` (ms) for the gateway and the replicas; defaults 10 s and 60 s. */
  readonly headersTimeout?: number;
  readonly requestTimeout?: number;
  /** Direct connections (docs/gateway.md): client connections handed to local replicas. */
  readonly directConnections?: boolean;
  readonly detach: boolean;
  /** After start: deploy this configuration file and wait until live (the README quick start). */
  readonly deploy?: string;
  /** With `deploy`: POST this JSON file to the first API and print the answer. */
  readonly sample?: string;
  /** `--python`: the interpreter for requirements.txt virtualenvs and Python predictors (see `daemonPython`). */
  readonly python?: string;
  /** `--log-format`: `pretty` (readable lines), `json` (pino), or `auto` (pretty when stderr is a terminal). Default auto. */
  readonly logFormat?: 'auto' | 'pretty' | 'json';
  readonly cwd: string;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

const BIN = CLI_ENTRY;
/** How the printed hints name the CLI: `myelin` when installed, `node bin/myelin.mjs` in a clone. */
const CLI_NAME = FROM_SOURCES ? 'node bin/myelin.mjs' : 'myelin';

/**
 * The daemon's Python interpreter: `--python`, else `$MYELIN_PYTHON`, else `python3` (looked up on
 * PATH). A path with a `/` is made absolute against `cwd`, since replicas run in their project folder.
 */
export function daemonPython(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  const p = flag || env[PYTHON_ENV] || DEFAULT_PYTHON;
  return p.includes('/') ? resolve(cwd, p) : p;
}

/**
 * `myelin up`: runs the daemon in the foreground until SIGINT/SIGTERM or `myelin down`; with
 * `--detach`, starts it in the background (logs to `<state>/daemon.log`, pid in `<state>/daemon.pid`)
 * and returns once its control API answers.
 */
export async function up(options: UpOptions): Promise<void> {
  const stateDir = resolve(options.stateDir ?? defaultStateDir());
  const controlUrl = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  if (options.detach) return detach(options, stateDir, controlUrl);

  const python = daemonPython(options.python, process.env, options.cwd);
  const format = options.logFormat ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && (options.stderr as { isTTY?: boolean }).isTTY === true);
  const log = createRootLogger(pretty ? { format: 'pretty' } : {});
  const { runDaemon } = await import('../../daemon/run-daemon.js');
  const running = await runDaemon({
    stateDir,
    target: options.target,
    nats: options.nats,
    host: options.host,
    port: options.port,
    gatewayHost: options.gatewayHost,
    gatewayPort: options.gatewayPort,
    headersTimeoutMs: options.headersTimeout,
    requestTimeoutMs: options.requestTimeout,
    directConnections: options.directConnections,
    log,
    python,
    kubernetes: {
      ...(options.inCluster ? { inCluster: true } : {}),
      ...(options.namespace ? { namespace: options.namespace } : {}),
      ...(options.image ? { image: options.image } : {}),
      ...(options.podServiceAccount ? { serviceAccountName: options.podServiceAccount } : {}),
      ...(options.imagePullSecrets?.length ? { imagePullSecrets: options.imagePullSecrets } : {}),
    },
  });
  options.stdout.write(
    `myelin daemon is up (target ${options.target}, transport ${options.nats ? `nats ${options.nats}` : 'local'})\n` +
      `  control api: ${running.controlUrl}\n  gateway:     ${running.gatewayUrl}\n  state:       ${stateDir}\n  python:      ${python}\n` +
      `  dashboard:   ${dashboardUrl(running.controlUrl, running.token)}\n`,
  );
  const onSignal = (): void => void running.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (options.deploy) await quickstart(options, running.controlUrl, stateDir);
    await running.stopped;
  } catch (err) {
    await running.stop();
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Deploys the example, waits until live, prints the endpoint and a sample prediction. */
async function quickstart(options: UpOptions, url: string, stateDir: string): Promise<void> {
  const { deploy } = await import('./deploy.js');
  const r = await deploy({ url, stateDir, file: options.deploy, cwd: options.cwd, force: true, wait: true, output: 'table', stdout: options.stdout, stderr: options.stderr });
  if (!options.sample || r.results.length === 0) return;
  const api = r.results[0].api;
  const { predict } = await import('./predict.js');
  options.stdout.write(`\n$ myelin predict ${api} ${options.sample}\n`);
  await predict({ url, stateDir, api, file: resolve(options.cwd, options.sample), stdin: process.stdin, stdout: options.stdout });
  const { get } = await import('./get.js');
  const detail = (await get({ url, stateDir, api, output: 'json', watch: false, stdout: devNull() })) as { url: string };
  options.stdout.write(
    `\nTry it:\n  curl -X POST ${detail.url} -H 'content-type: application/json' -d @${options.sample}\n` +
      `  ${CLI_NAME} get ${api}\n\nThe daemon keeps running; stop it with Ctrl-C (or \`${CLI_NAME} down\` from another shell).\n`,
  );
}

function devNull(): Writable {
  return { write: () => true } as unknown as Writable;
}

async function detach(options: UpOptions, stateDir: string, controlUrl: string): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const logFile = join(stateDir, 'daemon.log');
  const args = [
    BIN, 'up', '--target', options.target, '--state-dir', stateDir, '--host', options.host, '--port', String(options.port),
    '--gateway-host', options.gatewayHost, '--gateway-port', String(options.gatewayPort),
    ...(options.headersTimeout !== undefined ? ['--headers-timeout', `${options.headersTimeout}ms`] : []),
    ...(options.requestTimeout !== undefined ? ['--request-timeout', options.requestTimeout === 0 ? '0' : `${options.requestTimeout}ms`] : []),
    ...(options.directConnections === false ? ['--no-direct-connections'] : []),
    ...(options.nats ? ['--nats', options.nats] : []),
    ...(options.inCluster ? ['--in-cluster'] : []),
    ...(options.namespace ? ['--namespace', options.namespace] : []),
    ...(options.image ? ['--image', options.image] : []),
    ...(options.podServiceAccount ? ['--pod-service-account', options.podServiceAccount] : []),
    ...(options.imagePullSecrets ?? []).flatMap((s) => ['--image-pull-secret', s]),
    '--python', daemonPython(options.python, process.env, options.cwd),
  ];
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], cwd: options.cwd, env: process.env });
  closeSync(fd);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
      throw new ExitError(1, `error: the daemon exited at start (code ${exited}); last lines of ${logFile}:\n${tail}`);
    }
    try {
      const res = await fetch(`${controlUrl}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new ExitError(1, `error: the daemon did not answer on ${controlUrl} within 60s (see ${logFile})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  options.stdout.write(`myelin daemon started in the background (pid ${child.pid}); control api ${controlUrl}; logs in ${logFile}\n`);
  const token = (await readFile(join(stateDir, 'token'), 'utf8').catch(() => '')).trim();
  if (token) options.stdout.write(`  dashboard:   ${dashboardUrl(controlUrl, token)}\n`);
}
