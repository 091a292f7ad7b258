import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * The prediction API keys of one route (`networking.api_keys`), as the gateway checks them.
 *
 * A request passes when it carries one of `keys` as `Authorization: Bearer <key>` or as
 * `X-API-Key: <key>`. Keys are compared as SHA-256 digests with `timingSafeEqual`: the comparison
 * takes the same time whatever the presented value, its length included. The keys are held only here
 * (never in a spec, a log line or an error message).
 */
export class ApiKeyCheck {
  private readonly digests: readonly Buffer[];

  /** `keys`: at least one non-empty key. Throws `RangeError` otherwise (the daemon resolves them first). */
  constructor(keys: readonly string[]) {
    if (keys.length === 0 || keys.some((k) => k === '')) throw new RangeError('an API key check needs at least one non-empty key');
    this.digests = keys.map(digest);
  }

  /**
   * Looks at the request's `rawHeaders` (so `req.headers` is not built): `missing` when neither header
   * holds a key, `wrong` when the keys presented match none, `ok` otherwise. Several headers are
   * allowed; one matching key is enough.
   */
  check(rawHeaders: readonly string[]): 'ok' | 'missing' | 'wrong' {
    let presented = false;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i];
      let key: string | undefined;
      if (name.length === 13 && name.toLowerCase() === 'authorization') {
        const m = /^\s*bearer\s+(\S+)\s*$/i.exec(rawHeaders[i + 1]);
        key = m?.[1];
      } else if (name.length === 9 && name.toLowerCase() === 'x-api-key') {
        key = rawHeaders[i + 1].trim();
      }
      if (key === undefined || key === '') continue;
      presented = true;
      if (this.matches(key)) return 'ok';
    }
    return presented ? 'wrong' : 'missing';
  }

  private matches(key: string): boolean {
    const d = digest(key);
    let ok = false;
    // Every key is compared, so the time does not tell which one (or whether an early one) matched.
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * Answers 401 for a request `ApiKeyCheck` refused: `www-authenticate: Bearer realm="<name>"` and a JSON
 * error saying which headers carry the key (never echoing what was sent).
 */
export function sendUnauthorized(res: ServerResponse, name: string, outcome: 'missing' | 'wrong'): void {
  const error =
    outcome === 'missing'
      ? `${name} requires an API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"`
      : `wrong API key for ${name}`;
  const body = JSON.stringify({ error });
  res.writeHead(401, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'www-authenticate': `Bearer realm="${name}"${outcome === 'wrong' ? ', error="invalid_token"' : ''}`,
  });
  res.end(body);
}
