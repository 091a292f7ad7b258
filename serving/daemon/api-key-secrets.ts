import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where a secret's keys were found. */
export type SecretSource = 'file' | 'env';

export interface ResolvedSecret {
  /** The keys, each non-empty; at least one. Never logged. */
  readonly keys: readonly string[];
  readonly source: SecretSource;
}

/** A secret that is not set (neither file nor variable), set to nothing, or holding an unusable key. */
export class ApiKeySecretError extends Error {
  constructor(
    readonly secret: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiKeySecretError';
  }
}

/**
 * Reads the keys of `networking.api_keys.secret` NAME for the gateway. The file `<secretsDir>/NAME`
 * wins over the daemon's environment variable NAME: the file can be rewritten (a key rotated) while
 * the daemon runs, the environment cannot. The file holds one key per line (blank lines and
 * surrounding spaces ignored), so two keys may be valid during a rotation; the variable holds one key.
 * Read at each deploy and at each daemon start (restore): a changed key takes effect on the next one.
 *
 * Throws `ApiKeySecretError` naming the secret and both places when neither holds a key (an empty
 * file is an error, not a fall-through to the environment: it is what the operator wrote). Other read
 * errors of the file (permissions) are thrown as they are.
 */
export async function resolveApiKeySecret(name: string, secretsDir: string, env: NodeJS.ProcessEnv): Promise<ResolvedSecret> {
  const file = join(secretsDir, name);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const keys = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (keys.length === 0) throw new ApiKeySecretError(name, `secret ${name} is empty: ${file} holds no key (one key per line)`);
    checkKeys(name, keys, file);
    return { keys, source: 'file' };
  }
  const value = env[name]?.trim();
  if (value !== undefined && value !== '') {
    checkKeys(name, [value], `the environment variable ${name}`);
    return { keys: [value], source: 'env' };
  }
  throw new ApiKeySecretError(
    name,
    `secret ${name} is not set: the daemon found neither the file ${file} nor the environment variable ${name} (set one of them where the daemon runs; keys never go in the YAML)`,
  );
}

/** A key travels in one header token: no whitespace or control characters inside it. */
function checkKeys(name: string, keys: readonly string[], where: string): void {
  // eslint-disable-next-line no-control-regex
  if (keys.some((k) => /[\s\x00-\x1f\x7f]/.test(k))) {
    throw new ApiKeySecretError(name, `secret ${name} holds a key with whitespace or control characters inside it (in ${where}); a key must be one header token`);
  }
}
