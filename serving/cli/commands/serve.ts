import type { Writable } from 'node:stream';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatConfigProblem } from '../../../core/errors.js';
import type { Logger } from '../../../core/ports/logger.js';
import { createRootLogger } from '../../composition/logger.js';
import { installProcessGuards } from '../../replica/process-guards.js';
import { startReplica, type ExecutorChoice, type Replica } from '../../replica/replica-server.js';
import { ExitError } from '../exit-error.js';
import { findConfigFile } from './validate.js';

export interface ServeOptions {
  /** Configuration file or folder (default: myelin.yaml, else cortex.yaml in `cwd`). */
  readonly file?: string;
  readonly cwd: string;
  /** Which API of the file; required when the file has several. */
  readonly api?: string;
  /** Port to listen on (default the API's `networking.local_port`, 8888); 0 picks a free one. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly executor?: ExecutorChoice;
  /** How long a stop waits for requests in flight (ms, default 30 000). */
  readonly shutdownGraceMs?: number;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Default: the root logger on stderr. */
  readonly log?: Logger;
  /** Stops serving when aborted (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
  /** Called once the replica listens (tests read the address here). */
  readonly onListening?: (replica: Replica) => void;
}

/**
 * `myelin serve [file] [--api name] [--port N]`: one replica of one API in the foreground, without the
 * daemon (for development and debugging, Cortex #2077). Loads the file with the same loader as
 * `validate`/`deploy`, prints the URL when listening and `ready` once the predictor is constructed,
 * and serves until SIGINT/SIGTERM (or `signal`), then drains gracefully and returns. Throws
 * `ExitError(1)` when the API cannot be chosen or its predictor cannot load; `ConfigError` for an
 * invalid file.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const file = findConfigFile(options.cwd, options.file);
  const { specs, warnings } = await loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, cwd: options.cwd });
  for (const w of warnings) options.stderr.write(`${formatConfigProblem(w)}\n`);
  const spec = pickApi(specs, options.api, file);
  const log = options.log ?? createRootLogger();
  const removeGuards = installProcessGuards(log);
  // `predictor.env`, as a replica process gets it from the orchestrator (restored when serving ends).
  const restoreEnv = applyEnv(spec.predictor.env);

  let fatal: Error | undefined;
  const stop = new AbortController();
  let replica: Replica;
  try {
    replica = await startReplica({
      spec,
      log,
      host: options.host ?? '127.0.0.1',
      port: options.port ?? spec.networking.localPort,
      executor: options.executor,
      shutdownGraceMs: options.shutdownGraceMs,
      onFatal: (err) => {
        fatal = err;
        stop.abort();
      },
    });
  } catch (err) {
    removeGuards();
    restoreEnv();
    throw err;
  }
  options.onListening?.(replica);
  options.stdout.write(`serving ${spec.name} at ${replica.address.url} (POST /predict or /, GET / for the model, /metrics)\n`);
  replica.ready.then(
    () => options.stdout.write(`${spec.name} ready (${replica.executorMode}, ${spec.predictor.processesPerReplica}×${spec.predictor.threadsPerProcess} predictions at once)\n`),
    () => {},
  );

  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  options.signal?.addEventListener('abort', onSignal, { once: true });
  try {
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted || options.signal?.aborted) return resolve();
      stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await replica.close();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    options.signal?.removeEventListener('abort', onSignal);
    removeGuards();
    restoreEnv();
  }
  if (fatal) throw new ExitError(1, `error: ${spec.name}: the predictor cannot be loaded: ${fatal.message}`);
}

function pickApi(specs: readonly ApiSpec[], name: string | undefined, file: string): ApiSpec {
  if (name !== undefined) {
    const found = specs.find((s) => s.name === name);
    if (!found) throw new ExitError(1, `error: ${file} has no API named "${name}" (it has: ${specs.map((s) => s.name).join(', ')})`);
    return found;
  }
  if (specs.length === 1) return specs[0];
  throw new ExitError(1, `error: ${file} has ${specs.length} APIs; choose one with --api (${specs.map((s) => s.name).join(', ')})`);
}

/** Sets `env` in `process.env`; returns a function that puts the previous values back. */
function applyEnv(env: Readonly<Record<string, string>>): () => void {
  const previous = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    previous.set(k, process.env[k]);
    process.env[k] = v;
  }
  return () => {
    for (const [k, v] of previous) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
