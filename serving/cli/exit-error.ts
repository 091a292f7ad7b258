/** Thrown by command functions to end the process with `code` after printing `message` (SG 10.2). */
export class ExitError extends Error {
  readonly exitCode: number;
  /**
   * With `-o json`: fields the failure document carries besides `errors` (e.g. deploy's response and
   * the APIs' status), so a script still gets one JSON document on stdout.
   */
  readonly json?: Readonly<Record<string, unknown>>;
  constructor(exitCode: number, message = '', options?: { readonly json?: Readonly<Record<string, unknown>> }) {
    super(message);
    this.name = 'ExitError';
    this.exitCode = exitCode;
    this.json = options?.json;
  }
}
