import { pino, type DestinationStream, type Logger } from 'pino';

export interface RootLoggerOptions {
  /** pino level; default `MYELIN_LOG_LEVEL` or `info`. */
  readonly level?: string;
  /** Where JSON lines go; default stderr, so stdout stays for user-facing output. */
  readonly destination?: DestinationStream;
  readonly base?: Record<string, unknown>;
}

/** The one root logger of a process (SG 7.1): pino JSON lines, by default to stderr. */
export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const level = options.level ?? process.env.MYELIN_LOG_LEVEL ?? 'info';
  return pino(
    { level, base: { pid: process.pid, ...options.base }, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
