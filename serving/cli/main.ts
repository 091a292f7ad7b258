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
  try {
    await buildCli().parseAsync([...argv]);
    return 0;
  } catch (err) {
    return report(err);
  }
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
