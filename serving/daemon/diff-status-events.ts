import type { ApiStatusEvent, RolloutProgressEvent } from '../../core/events/engine-event.js';
import type { ApiReplicaStatus } from '../../core/ports/orchestrator-target.js';
import { apiStatus } from './api-status.js';

/** What was last published for one API, so that only changes are published. */
export interface StatusMemory {
  /** `<status>|<message>` of the last `api.status`; '' before the first. */
  readonly status: string;
  /** `<revision>|<updated>|<stale>|<requested>` of the last `rollout.progress` while rolling; '' when none is on. */
  readonly rollout: string;
}

/** Nothing published yet. */
export const NO_STATUS: StatusMemory = { status: '', rollout: '' };

export interface StatusInput {
  readonly api: string;
  /** The revision the daemon asked for. */
  readonly revision: string;
  readonly minReplicas: number;
  /** `OrchestratorTarget.status(api)`; undefined while the target does not know the API. */
  readonly replicas: ApiReplicaStatus | undefined;
}

/**
 * The `api.status` and `rollout.progress` events of one API's current counts, stamped `now` (ms
 * since the epoch), and what to remember for next time. Pure.
 *
 * - `api.status` when the status (`apiStatus`, Cortex's order) or its message changed.
 * - `rollout.progress` while ready replicas of an older revision serve (`stale > 0`), on each change
 *   of the counts, and once more when the last of them is gone; a plain scale-up is no rollout.
 *   E.g. stale 1 → 1 → 0 → 0 with updated 0 → 1 → 1 → 1 ⇒ progress (0, 1), (1, 1), (1, 0), then nothing.
 */
export function diffStatusEvents(prev: StatusMemory, input: StatusInput, now: number): { readonly events: Array<ApiStatusEvent | RolloutProgressEvent>; readonly memory: StatusMemory } {
  const rs = input.replicas;
  const events: Array<ApiStatusEvent | RolloutProgressEvent> = [];
  const { status, message } = apiStatus(rs, input.minReplicas);
  let memory = prev;
  const statusKey = `${status}|${message ?? ''}`;
  if (statusKey !== prev.status) {
    memory = { ...memory, status: statusKey };
    events.push({ v: 1, type: 'api.status', api: input.api, t: now, status, ...(message ? { message } : {}) });
  }
  const rolling = rs !== undefined && rs.stale > 0;
  const rolloutKey = rs ? `${input.revision}|${rs.upToDate}|${rs.stale}|${rs.requested}` : '';
  if (rs && rolloutKey !== prev.rollout && (rolling || prev.rollout !== '')) {
    memory = { ...memory, rollout: rolling ? rolloutKey : '' };
    events.push({ v: 1, type: 'rollout.progress', api: input.api, t: now, revision: input.revision, updated: rs.upToDate, stale: rs.stale, requested: rs.requested });
  }
  return { events, memory };
}
