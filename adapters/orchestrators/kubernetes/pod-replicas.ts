import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { ApiReplicaStatus, ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { API_LABEL, REPLICA_PORT, REVISION_LABEL } from './kubernetes-manifests.js';

/**
 * Container waiting reasons after which a pod will not become ready without a change: the
 * container crashes and is restarted with back-off, or cannot be created at all.
 */
const CRASH_REASONS = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/** Timestamps are `Date`s in objects the client deserialized and RFC 3339 strings in raw watch events. */
export function timeMs(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string' && v !== '') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** One pod as a replica, plus what status() needs beyond ReplicaInfo. */
export interface PodView {
  readonly replica: ReplicaInfo;
  /** Why the pod counts as crashed, e.g. `CrashLoopBackOff: back-off 10s … (exit code 1, 3 restarts)`. */
  readonly crashReason?: string;
  /** Restarts of the replica container (changes on every crash; keys the last-log fetch). */
  readonly restarts: number;
  /**
   * The pod keeps failing where it is (a container in back-off or an image that cannot be pulled):
   * what makes an API's status `error`. A pod that ended once (phase Failed, e.g. evicted) is
   * crashed but not looping: its Deployment replaces it.
   */
  readonly looping: boolean;
}

/**
 * Maps a pod to a replica: `deletionTimestamp` → terminating; phase Succeeded → stopped; phase
 * Failed or a container waiting with a crash reason (CrashLoopBackOff, image pull errors) →
 * crashed; Pending → pending (with `pendingReason: compute unavailable: …` when the PodScheduled
 * condition says Unschedulable); Running and Ready → ready; Running and not Ready → starting.
 * Returns undefined for pods without the API label (not ours).
 */
export function podView(pod: V1Pod): PodView | undefined {
  const api = pod.metadata?.labels?.[API_LABEL];
  const id = pod.metadata?.name;
  if (!api || !id) return undefined;
  const status = pod.status ?? {};
  const conditions = status.conditions ?? [];
  const containers = status.containerStatuses ?? [];
  const restarts = containers.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const ready = conditions.find((c) => c.type === 'Ready');
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  let state: ReplicaInfo['state'];
  let pendingReason: string | undefined;
  let crashReason: string | undefined;
  const waiting = containers.map((c) => ({ c, w: c.state?.waiting })).find((x) => x.w?.reason && CRASH_REASONS.has(x.w.reason));
  // Between back-offs a crash-looping container runs again for a moment: a restarted, not-ready
  // container whose last run failed still counts as crashed, so the state does not flicker.
  const restarted = containers.find(
    (c) => !c.ready && (c.restartCount ?? 0) > 0 && c.lastState?.terminated && c.lastState.terminated.exitCode !== 0,
  );
  let looping = false;
  if (pod.metadata?.deletionTimestamp) state = 'terminating';
  else if (status.phase === 'Succeeded') state = 'stopped';
  else if (status.phase === 'Failed') {
    state = 'crashed';
    const term = containers.map((c) => c.state?.terminated).find((t) => t);
    crashReason = [status.reason ?? term?.reason ?? 'Failed', status.message ?? term?.message].filter(Boolean).join(': ');
    if (term?.exitCode !== undefined) crashReason += ` (exit code ${term.exitCode})`;
  } else if (waiting || (restarted && status.phase === 'Running')) {
    state = 'crashed';
    looping = true;
    const c = waiting?.c ?? restarted!;
    const term = c.lastState?.terminated;
    const exit = term?.exitCode;
    const details = [exit !== undefined ? `exit code ${exit}` : undefined, c.restartCount ? `${c.restartCount} restarts` : undefined].filter(Boolean);
    const head = waiting ? `${waiting.w!.reason}${waiting.w!.message ? `: ${waiting.w!.message}` : ''}` : `restarting after ${term?.reason ?? 'Error'}`;
    crashReason = `${head}${details.length ? ` (${details.join(', ')})` : ''}`;
  } else if (status.phase === 'Running') state = ready?.status === 'True' ? 'ready' : 'starting';
  else {
    state = 'pending';
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      pendingReason = `compute unavailable: ${scheduled.message ?? 'no node can fit the pod'}`;
    }
  }
  const createdAt = timeMs(pod.metadata?.creationTimestamp) ?? 0;
  const readyAt = state === 'ready' ? timeMs(ready?.lastTransitionTime) : undefined;
  const replica: ReplicaInfo = {
    id,
    api,
    revision: pod.metadata?.labels?.[REVISION_LABEL] ?? '',
    state,
    ...(status.podIP ? { address: { host: status.podIP, port: REPLICA_PORT } } : {}),
    createdAt,
    ...(readyAt !== undefined ? { readyAt } : {}),
    ...(pendingReason ? { pendingReason } : {}),
  };
  return { replica, restarts, looping, ...(crashReason ? { crashReason } : {}) };
}

/** The revision a Deployment's pod template carries (the current revision). */
export function deploymentRevision(d: V1Deployment): string {
  return d.spec?.template?.metadata?.labels?.[REVISION_LABEL] ?? '';
}

/**
 * The API's counts from its Deployment and pods: `upToDate` = ready pods of the template's
 * revision, `stale` = ready pods of other revisions; pending/starting/failed count pods of the
 * current revision; `crashLooping` when one of them crash-loops (Kubernetes keeps restarting it with
 * back-off, not a pod that ended once such as an evicted one); `computeUnavailable` when one cannot be scheduled. `message` explains the worst of
 * these, else a Deployment condition that reports failure.
 *
 * Example: replicas 3, template revision r2, pods {r1 ready, r1 ready, r2 ready, r2 pending
 * (Unschedulable)} ⇒ upToDate 1, stale 2, pending 1, computeUnavailable, message "… Insufficient cpu".
 */
export function replicaStatus(api: string, d: V1Deployment, pods: readonly PodView[], lastLogLines: readonly string[]): ApiReplicaStatus {
  const revision = deploymentRevision(d);
  const mine = pods.filter((p) => p.replica.api === api);
  const current = mine.filter((p) => p.replica.revision === revision);
  const count = (xs: readonly PodView[], s: ReplicaInfo['state']): number => xs.filter((p) => p.replica.state === s).length;
  const crashed = current.filter((p) => p.replica.state === 'crashed');
  const unschedulable = current.find((p) => p.replica.pendingReason);
  const failedCondition = (d.status?.conditions ?? []).find(
    (c) => (c.type === 'Progressing' && c.status === 'False') || (c.type === 'ReplicaFailure' && c.status === 'True'),
  );
  let message: string | undefined;
  if (crashed.length) message = `replica ${crashed[0].replica.id} crashed: ${crashed[0].crashReason ?? 'unknown reason'}`;
  else if (unschedulable) message = unschedulable.replica.pendingReason;
  else if (failedCondition) message = `${failedCondition.reason ?? failedCondition.type}: ${failedCondition.message ?? ''}`.trim();
  return {
    api,
    revision,
    requested: d.spec?.replicas ?? 0,
    upToDate: count(current, 'ready'),
    stale: mine.filter((p) => p.replica.revision !== revision && p.replica.state === 'ready').length,
    pending: count(current, 'pending'),
    starting: count(current, 'starting'),
    failed: crashed.length,
    crashLooping: crashed.some((p) => p.looping),
    computeUnavailable: unschedulable !== undefined,
    lastLogLines: crashed.length ? lastLogLines : [],
    ...(message ? { message } : {}),
  };
}
