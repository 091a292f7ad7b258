import type { ApiReplicaStatus } from '../../core/ports/orchestrator-target.js';
import type { ApiStatusCode } from './daemon-service.js';

/**
 * The API's status in Cortex's order (reference/cortex.md §8), from the orchestrator's counts:
 * enough up-to-date replicas → live; a crash-looping revision → error; replicas that cannot be
 * placed → compute unavailable; at least min_replicas up to date → live; else updating.
 * A rollout whose new revision fails while the old one keeps serving is `error` with a message:
 * the previous revision still answers (see `message`). An API with `min_replicas: 0` that the
 * autoscaler took to zero is `scaled to zero` (its next request is held and starts a replica).
 */
export function apiStatus(s: ApiReplicaStatus | undefined, minReplicas: number): { status: ApiStatusCode; message?: string } {
  if (!s) return { status: 'unknown' };
  if (s.upToDate >= s.requested && s.requested > 0) return { status: 'live', message: s.message };
  if (s.requested === 0 && minReplicas === 0) return { status: 'scaled to zero', message: s.message };
  if (s.crashLooping) return { status: 'error', message: s.message ?? 'replicas of the current revision keep crashing' };
  if (s.computeUnavailable) return { status: 'compute unavailable', message: s.message };
  if (s.upToDate >= minReplicas) return { status: 'live', message: s.message };
  return { status: 'updating', message: s.message };
}
