import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The bearer token that lets the pods of one API download its project (`GET /v1/projects/<id>?api=<api>`):
 * HMAC-SHA256, hex, of `project:<api>`, keyed by the daemon's secret (its control API token). Derived,
 * never stored: the daemon recomputes it on each request, and a new daemon token revokes every one.
 * It names the API, not the project, so a redeploy keeps the token its pods already hold; it grants
 * nothing but that API's current project (not the control API, not another API's files).
 */
export function projectToken(daemonSecret: string, api: string): string {
  return createHmac('sha256', daemonSecret).update(`project:${api}`).digest('hex');
}

/** True when `presented` is `api`'s project token, compared in constant time. */
export function isProjectToken(daemonSecret: string, api: string, presented: string): boolean {
  const expected = Buffer.from(projectToken(daemonSecret, api));
  const got = Buffer.from(presented);
  return got.length === expected.length && timingSafeEqual(got, expected);
}
