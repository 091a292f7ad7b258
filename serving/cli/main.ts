import { CommanderError } from 'commander';
import { ConfigError, EngineError, formatConfigProblem } from '../../core/errors.js';
import { buildCli } from './cli.js';
import { ExitError } from './exit-error.js';

/**
 * Runs the CLI and turns every error into a message and an exit code (SG 6.3): the only place that
 * calls `process.exit`. No stack trace reaches the user unless `MYELIN_DEBUG=1`.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const code = await run(argv);
  // Let stdout drain before exiting (pipes are asynchronous).
  process.stdout.write('', () => process.exit(code));
}

/** Runs the CLI and returns the exit code instead of exiting (tests call this). */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildCli();
  // Known once the arguments are parsed: a command run with `-o json` reports its failure as JSON too.
  let json = false;
  program.hook('preAction', (_program, action) => {
    json = action.opts().output === 'json';
  });
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    const code = report(err);
    if (json && !(err instanceof CommanderError) && code !== 0) process.stdout.write(`${JSON.stringify(failureDocument(err), null, 2)}\n`);
    return code;
  }
}

/** One entry of `errors` in a `-o json` failure: a configuration problem, or a message (and code). */
export interface JsonError {
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly api?: string;
  readonly field?: string | null;
  readonly message: string;
  readonly severity?: 'error' | 'warning';
  readonly code?: string;
}

/**
 * What `-o json` prints on stdout when a command fails (exit code non-zero): `{ "errors": [...] }`,
 * one entry per configuration problem (`file`, `line`, `col`, `field` (null for a file-level problem),
 * `message`, and `api`, `severity` when known), else one entry with the `message` (and the `code` of an
 * engine error). A command may add fields of its own (`ExitError.json`). Strings are as in the file:
 * JSON escapes control characters itself.
 */
export function failureDocument(err: unknown): { errors: JsonError[]; [k: string]: unknown } {
  if (err instanceof ConfigError) {
    return {
      errors: err.problems.map((p) => ({
        file: p.file,
        line: p.line,
        col: p.col,
        ...(p.api !== undefined ? { api: p.api } : {}),
        field: p.field !== undefined && p.field !== '' ? p.field : null,
        message: p.message,
        ...(p.severity !== undefined ? { severity: p.severity } : {}),
      })),
    };
  }
  if (err instanceof ExitError) return { ...err.json, errors: [{ message: err.message.replace(/^error: /, '') }] };
  if (err instanceof EngineError) return { errors: [{ message: err.message, code: err.code }] };
  return { errors: [{ message: `internal error: ${err instanceof Error ? err.message : String(err)}`, code: 'ENG_INTERNAL' }] };
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed the help or the error; --help and --version end with exit code 0.
    return err.exitCode;
  }
  if (err instanceof ExitError) {
    if (err.message) process.stderr.write(`${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`${formatConfigProblem(p)}\n`);
    return 1;
  }
  if (err instanceof EngineError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (process.env.MYELIN_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`internal error: ${message}\n`);
  if (process.env.MYELIN_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 70;
}
