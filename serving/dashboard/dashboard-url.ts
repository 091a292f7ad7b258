/**
 * The dashboard's URL with its login token (Jupyter's pattern), as `myelin up` and `myelin dashboard`
 * print it: opening it once trades the token for a session cookie and drops it from the address bar.
 */
export function dashboardUrl(controlUrl: string, token: string): string {
  return `${controlUrl.replace(/\/+$/, '')}/?token=${encodeURIComponent(token)}`;
}
