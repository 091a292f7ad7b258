/**
 * Coded errors of the engine (SG 6). Every error a user can see is an `EngineError` with a stable
 * `SCREAMING_SNAKE` code prefixed `ENG_`, and a message written for a person. Errors from other
 * libraries are wrapped (`new TransportError('publish failed', { cause })`); strings are never thrown.
 * Only `serving/cli/main.ts` turns errors into exit codes.
 */
export class EngineError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem found in a configuration file, with where it is. Lines and columns are 1-based. */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The API's name when known, else its index as `api[<i>]`; absent for file-level problems. */
  readonly api?: string;
  /** Dotted field path inside the API, e.g. `autoscaling.min_replicas`; absent for file-level problems. */
  readonly field?: string;
  readonly message: string;
  /** `error` rejects the file; `warning` is printed but the file is accepted. */
  readonly severity: 'error' | 'warning';
}

const CONTROL_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Makes text from a configuration file safe to print on one terminal line: C0 and C1 control
 * characters, DEL, and the Unicode line separators and bidirectional overrides are written as escapes
 * (`\n`, `\r`, `\t`, `\x1b`, `\u2028`, `\u202e`), so a name holding a newline cannot forge a second
 * problem line and an ANSI sequence cannot reach the terminal. Other text is unchanged.
 */
export function escapeControlChars(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const known = CONTROL_ESCAPES[c];
    if (known) return known;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Formats one problem as `<file>:<line>:<col>: <api>: <field>: <message>` (parts that are absent are
 * left out), always one line: control characters in any part are escaped (`escapeControlChars`).
 */
export function formatConfigProblem(p: ConfigProblem): string {
  const parts = [escapeControlChars(`${p.file}:${p.line}:${p.col}`)];
  if (p.api !== undefined) parts.push(escapeControlChars(String(p.api)));
  if (p.field !== undefined && p.field !== '') parts.push(escapeControlChars(String(p.field)));
  const message = escapeControlChars(String(p.message));
  parts.push(p.severity === 'warning' ? `warning: ${message}` : message);
  return parts.join(': ');
}

/** A configuration file (or a spec handed over the wire) that cannot be used; carries every problem found. */
export class ConfigError extends EngineError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[], options?: ErrorOptions) {
    super(
      'ENG_CONFIG_INVALID',
      problems.length === 1
        ? formatConfigProblem(problems[0])
        : `${problems.length} problems:\n${problems.map(formatConfigProblem).join('\n')}`,
      options,
    );
    this.problems = problems;
  }
}

/** A contribution point was asked for a kind nobody registered. */
export class UnknownKindError extends EngineError {
  readonly point: string;
  readonly kind: string;
  readonly known: readonly string[];
  constructor(point: string, kind: string, known: readonly string[]) {
    super(
      'ENG_UNKNOWN_KIND',
      `unknown ${point} kind "${kind}" (known: ${known.length ? known.map((k) => `"${k}"`).join(', ') : 'none'})`,
    );
    this.point = point;
    this.kind = kind;
    this.known = known;
  }
}

/** Two contributions registered the same kind for one contribution point. */
export class DuplicateKindError extends EngineError {
  constructor(point: string, kind: string) {
    super('ENG_DUPLICATE_KIND', `${point} kind "${kind}" is registered twice`);
  }
}

/** Metrics or events could not travel (NATS down, message malformed, …). */
export class TransportError extends EngineError {
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'ENG_TRANSPORT', message, options);
  }
}

/** Replicas could not be started, stopped or observed. */
export class OrchestratorError extends EngineError {
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'ENG_ORCHESTRATOR', message, options);
  }
}

/**
 * Code of a `PredictorError` thrown by a backend when the worker running a prediction went away (a
 * Python worker process died): the replica answers 503 with `Retry-After`, the message as the error.
 */
export const WORKER_LOST_CODE = 'ENG_PREDICTOR_WORKER_LOST';

/** A predictor could not be loaded or failed in a way that is not the request's fault. */
export class PredictorError extends EngineError {
  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(options?.code ?? 'ENG_PREDICTOR', message, options);
  }
}

/**
 * Thrown by predictor code to answer with a given HTTP status (Cortex's `HTTPException`):
 * `throw new HttpError(400, 'expected a list of 4 numbers')`. The message is the response body.
 */
const HTTP_ERROR_BRAND = Symbol.for('myelin.HttpError');

export class HttpError extends EngineError {
  /**
   * `instanceof` by brand, not by prototype: a predictor file loaded in its own module namespace
   * (tsx's `tsImport`) gets its own copy of this class, and its errors must still be recognized.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[HTTP_ERROR_BRAND] === true;
  }
  readonly [HTTP_ERROR_BRAND] = true;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, options?: ErrorOptions & { headers?: Record<string, string> }) {
    super('ENG_HTTP', message, options);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new RangeError(`HttpError status must be an integer in [100, 599] (got ${status})`);
    }
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/** Errors as one object, so callers can write `err instanceof errors.ConfigError` (nats.js style). */
export const errors = {
  EngineError,
  ConfigError,
  UnknownKindError,
  DuplicateKindError,
  TransportError,
  OrchestratorError,
  PredictorError,
  HttpError,
} as const;
