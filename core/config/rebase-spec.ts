import type { ApiSpec } from './api-spec.js';

/**
 * The spec with every absolute path inside `fromDir` (the project folder where the daemon unpacked
 * it) moved under `toDir` (where a pod's init container puts the same files, e.g. `/project`):
 * `projectDir`, `file`, predictor and model paths, request handlers. URLs and paths outside the
 * project are kept. Pure: the Kubernetes manifests use it so a pod reads its project at its own path.
 */
export function rebaseSpec(spec: ApiSpec, fromDir: string, toDir: string): ApiSpec {
  const from = fromDir.replace(/\/+$/, '');
  const to = toDir.replace(/\/+$/, '') || '/';
  const move = (s: string): string => {
    if (s === from) return to;
    if (s.startsWith(`${from}/`)) return `${to === '/' ? '' : to}${s.slice(from.length)}`;
    return s;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return move(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return walk(spec) as ApiSpec;
}
