import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import type { ApiSpec } from '../../core/config/api-spec.js';

/** Replaces absolute paths under the project folder by project-relative ones, so moving a project does not change ids. */
function relativize(value: unknown, projectDir: string): unknown {
  if (typeof value === 'string') return value.startsWith(projectDir) ? relative(projectDir, value) : value;
  if (Array.isArray(value)) return value.map((v) => relativize(v, projectDir));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = relativize((value as Record<string, unknown>)[k], projectDir);
    return out;
  }
  return value;
}

function hash(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 10);
}

/**
 * Cortex's predictorID (reference/cortex.md §8): what the replicas run. Changes with the predictor
 * (incl. models, config, env, timeout), monitoring, compute, the project's files and the deployment
 * nonce (`refresh`); a change here means a rolling update. Autoscaling, networking and update strategy
 * are not part of it: changing only those never restarts replicas.
 */
export function revisionOf(spec: ApiSpec, projectId: string, deploymentNonce: string): string {
  return hash([spec.kind, relativize(spec.predictor, spec.projectDir), spec.monitoring ?? null, spec.compute, projectId, deploymentNonce]);
}

/** Cortex's specID: the revision plus everything else that can be re-applied without a restart. */
export function specIdOf(spec: ApiSpec, revision: string): string {
  return hash([revision, spec.networking, spec.autoscaling, spec.updateStrategy]);
}
