import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export interface RootLoggerOptions {
  /** pino level; default `MYELIN_LOG_LEVEL` or `info`. */
  readonly level?: string;
  /** Where JSON lines go; default stderr, so stdout stays for user-facing output. */
  readonly destination?: DestinationStream;
  readonly base?: Record<string, unknown>;
  /**
   * `json` (default): pino JSON lines. `pretty`: readable lines for a terminal (pino-pretty, in this
   * thread, colours when stderr is a TTY); for the foreground daemon (`myelin up --log-format`).
   */
  readonly format?: 'json' | 'pretty';
}

/** The one root logger of a process (SG 7.1): pino JSON lines, by default to stderr. */
export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const level = options.level ?? process.env.MYELIN_LOG_LEVEL ?? 'info';
  const destination =
    options.destination ??
    (options.format === 'pretty'
      ? (createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream)({
          destination: 2,
          colorize: process.stderr.isTTY === true,
          translateTime: 'HH:MM:ss.l',
          ignore: 'pid,hostname',
          singleLine: true,
        })
      : pino.destination({ fd: 2, sync: false }));
  return pino({ level, base: { pid: process.pid, ...options.base }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
