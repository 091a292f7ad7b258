import type { Logger as PinoLogger } from 'pino';

/** The root pino logger; classes take a child once: `log.child({ component: '<folder>/<unit>' })` (SG 7.1). */
export const Logger = Symbol('Logger');
export type Logger = PinoLogger;
