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

/**
 * Signal names by number as Linux numbers them (containers run Linux, whatever the daemon runs on):
 * index n is signal n. A container whose main process a signal ended exits with code 128 + n.
 */
const LINUX_SIGNALS: readonly (string | undefined)[] = [
  undefined,
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/** Bound of `crashReason` (a termination message can be 4 KiB, or a log tail with FallbackToLogsOnError). */
const CRASH_REASON_MAX_CHARS = 2048;

/** How one container run ended (`state.terminated` or `lastState.terminated` of a container status). */
export interface ContainerTermination {
  readonly exitCode?: number;
  readonly signal?: number;
  readonly reason?: string;
  readonly message?: string;
}

/**
 * A container run's end as the port reports it: a signal when the runtime names one
 * (`terminated.signal`) or the exit code is 128 + n for a Linux signal n (137 ⇒ SIGKILL, 143 ⇒
 * SIGTERM, 139 ⇒ SIGSEGV), and then `exitCode: null`, as the local target reports a killed process;
 * else the exit code and `signal: null`. Both null when the container never ran to an end (an image
 * that cannot be pulled).
 *
 * Example: `{ exitCode: 137, reason: 'OOMKilled' }` ⇒ `{ exitCode: null, signal: 'SIGKILL' }`;
 * `{ exitCode: 3 }` ⇒ `{ exitCode: 3, signal: null }`; `{ exitCode: 200 }` ⇒ `{ exitCode: 200, signal: null }`.
 */
export function containerExit(term: ContainerTermination | undefined): { readonly exitCode: number | null; readonly signal: string | null } {
  if (!term) return { exitCode: null, signal: null };
  const named = term.signal !== undefined ? LINUX_SIGNALS[term.signal] : undefined;
  if (named) return { exitCode: null, signal: named };
  const code = term.exitCode;
  if (code === undefined || code === null) return { exitCode: null, signal: null };
  const bySignal = code > 128 ? LINUX_SIGNALS[code - 128] : undefined;
  return bySignal ? { exitCode: null, signal: bySignal } : { exitCode: code, signal: null };
}

/** One pod as a replica, plus what status() needs beyond ReplicaInfo. */
export interface PodView {
  /** For a `crashed` pod it carries `exitCode`, `signal` and `crashReason` (the same text as below). */
  readonly replica: ReplicaInfo;
  /** Why the pod counts as crashed, e.g. `CrashLoopBackOff: back-off 10s … (exit code 1, 3 restarts)`. */
  readonly crashReason?: string;
  /** Restarts of the replica container (changes on every crash; keys the last-log fetch). */
  readonly restarts: number;
  /**
   * The pod keeps failing where it is (a container in back-off, one that just exited with an error
   * and will be restarted, or an image that cannot be pulled): what makes an API's status `error`.
   * A pod that ended once (phase Failed, e.g. evicted) is crashed but not looping: its Deployment
   * replaces it.
   */
  readonly looping: boolean;
}

/** `; message: <termination message>`, trimmed; empty when there is none. */
function saying(message: string | undefined): string {
  const m = message?.trim();
  return m ? `; message: ${m}` : '';
}

function bounded(text: string): string {
  return text.length > CRASH_REASON_MAX_CHARS ? `${text.slice(0, CRASH_REASON_MAX_CHARS)}…` : text;
}

/**
 * Maps a pod to a replica: `deletionTimestamp` → terminating; phase Succeeded → stopped; phase
 * Failed → crashed (not looping); a container waiting with a crash reason (CrashLoopBackOff, image
 * pull errors, container creation errors), a restarted container that is not ready and whose last
 * run failed (running again between back-offs), or, in a Running pod, a container terminated with a
 * non-zero exit (before the kubelet's back-off) → crashed (looping); Pending → pending (with
 * `pendingReason: compute unavailable: …` when the PodScheduled condition says Unschedulable);
 * Running and Ready → ready; Running and not Ready → starting. A crashed replica carries
 * `exitCode` / `signal` (see `containerExit`) and `crashReason` from the container's
 * `state.terminated` (an ended run) or `lastState.terminated` (the previous run of a restarted
 * container): its reason (`Error`, `OOMKilled`), exit code, restart count and termination message.
 * Returns undefined for pods without the API label (not ours).
 *
 * Example: waiting CrashLoopBackOff "back-off 40s", 3 restarts, lastState.terminated exit 137
 * OOMKilled ⇒ crashed, looping, `exitCode: null`, `signal: 'SIGKILL'`, crashReason
 * `CrashLoopBackOff: back-off 40s (OOMKilled, exit code 137, 3 restarts)`.
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
  let term: ContainerTermination | undefined;
  const waiting = containers.map((c) => ({ c, w: c.state?.waiting })).find((x) => x.w?.reason && CRASH_REASONS.has(x.w.reason));
  // Between back-offs a crash-looping container runs again for a moment: a restarted, not-ready
  // container whose last run failed still counts as crashed, so the state does not flicker.
  const restarted = containers.find(
    (c) => !c.ready && (c.restartCount ?? 0) > 0 && c.lastState?.terminated && c.lastState.terminated.exitCode !== 0,
  );
  // Just exited with an error: the kubelet restarts it (restartPolicy Always) after a back-off.
  const exited = containers.find((c) => c.state?.terminated && c.state.terminated.exitCode !== 0);
  let looping = false;
  if (pod.metadata?.deletionTimestamp) state = 'terminating';
  else if (status.phase === 'Succeeded') state = 'stopped';
  else if (status.phase === 'Failed') {
    state = 'crashed';
    const c = containers.find((x) => x.state?.terminated) ?? containers.find((x) => x.lastState?.terminated);
    term = c?.state?.terminated ?? c?.lastState?.terminated;
    crashReason = [status.reason ?? term?.reason ?? 'Failed', status.message ?? term?.message].filter(Boolean).join(': ');
    if (term?.exitCode !== undefined) crashReason += ` (exit code ${term.exitCode})`;
    // The pod's own message said why it failed; the container's termination message says more.
    if (status.message && term?.message && term.message !== status.message) crashReason += saying(term.message);
  } else if (waiting || (status.phase === 'Running' && (exited || restarted))) {
    state = 'crashed';
    looping = true;
    const c = waiting?.c ?? exited ?? restarted!;
    term = c.state?.terminated ?? c.lastState?.terminated;
    const exit = term?.exitCode;
    const details = [
      waiting && term?.reason ? term.reason : undefined,
      exit !== undefined ? `exit code ${exit}` : undefined,
      c.restartCount ? `${c.restartCount} restarts` : undefined,
    ].filter(Boolean);
    const head = waiting
      ? `${waiting.w!.reason}${waiting.w!.message ? `: ${waiting.w!.message}` : ''}`
      : c === exited
        ? `exited with ${term?.reason ?? 'Error'}`
        : `restarting after ${term?.reason ?? 'Error'}`;
    crashReason = `${head}${details.length ? ` (${details.join(', ')})` : ''}${saying(term?.message)}`;
  } else if (status.phase === 'Running') state = ready?.status === 'True' ? 'ready' : 'starting';
  else {
    state = 'pending';
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      pendingReason = `compute unavailable: ${scheduled.message ?? 'no node can fit the pod'}`;
    }
  }
  if (crashReason) crashReason = bounded(crashReason);
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
    ...(state === 'crashed' ? { ...containerExit(term), ...(crashReason ? { crashReason } : {}) } : {}),
  };
  return { replica, restarts, looping, ...(crashReason ? { crashReason } : {}) };
}

/** The revision a Deployment's pod template carries (the current revision). */
export function deploymentRevision(d: V1Deployment): string {
  return d.spec?.template?.metadata?.labels?.[REVISION_LABEL] ?? '';
}

/**
 * The API's counts from its Deployment and pods: `upToDate` = ready pods of the template's
 * revision, `stale` = ready pods of other revisions; pending/starting count pods of the current
 * revision. `failed` = pods of the current revision that are `crashed` now (see `podView`: crash
 * looping, image or container errors, phase Failed), one per pod however often it restarted
 * (restart counts only show in the message), and 0 once the kubelet has it running and ready again
 * or the Deployment has replaced it; crashed pods of older revisions are not counted. `crashLooping`
 * when one of those keeps failing where it is (`PodView.looping`: waiting CrashLoopBackOff, an image
 * pull or container creation error, a failed run being restarted), not for a pod that ended once
 * such as an evicted one (phase Failed). `computeUnavailable` when one cannot be scheduled.
 * `lastLogLines` only while a pod of the current revision is crashed. `message` explains the worst
 * of these (the first crashed pod in `pods`, which the target sorts by name, else the scheduler's message), else a Deployment
 * condition that reports failure.
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
