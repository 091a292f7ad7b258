import type { ApiSpec } from '../../../core/config/api-spec.js';
import { formatDuration } from '../../../core/config/quantities.js';
import type { ApiReplicaStatus, ReplicaAddress, ReplicaInfo, ReplicaState } from '../../../core/ports/orchestrator-target.js';
import type { CrashWindow } from './crash-backoff.js';
import type { LineRing } from './line-ring.js';
import type { ReplicaExit } from './replica-process.js';
import { planRollout, resolveUpdateBudget } from './rollout-plan.js';

/**
 * The pure half of the local orchestrator: what its replica and API records mean (status, rollout
 * progress, which replicas to stop and how many to start, the `ReplicaInfo` list). Nothing here
 * starts a process, sets a timer or reads a clock: time is passed in.
 */

/** What the tracker reads of one replica. */
export interface TrackedReplica {
  readonly id: string;
  readonly api: string;
  readonly revision: string;
  /** Creation order within the API (the `<n>` of the id). */
  readonly n: number;
  readonly createdAt: number;
  readonly state: ReplicaState;
  readonly readyAt?: number;
  readonly pendingReason?: string;
  readonly address?: ReplicaAddress;
  readonly pid?: number;
  /** The slot was given up (the process may still be ending). */
  readonly stopRequested: boolean;
  readonly exit?: ReplicaExit;
  /** The replica's recent output. */
  readonly lines: LineRing;
}

/** What the tracker reads of one API. */
export interface TrackedApi<R extends TrackedReplica = TrackedReplica> {
  readonly name: string;
  readonly current: { readonly revision: string; readonly spec: Pick<ApiSpec, 'updateStrategy'> };
  /** The last revision that was fully rolled out. */
  readonly stable?: { readonly revision: string };
  readonly requested: number;
  /** In creation order. */
  readonly replicas: ReadonlyMap<string, R>;
  /** Crash times per revision. */
  readonly crashes: ReadonlyMap<string, CrashWindow>;
  readonly lastCrash?: LastCrash;
}

export interface LastCrash {
  readonly revision: string;
  readonly t: number;
  readonly lines: readonly string[];
  readonly reason: string;
}

/** The crash-loop rule. */
export interface CrashLoopRule {
  /** This many crashes of one revision within the window make it crash-looping. */
  readonly threshold: number;
  readonly windowMs: number;
}

/** A replica that holds one of the `requested` places: not given up, and not ending. */
export const isSlot = (r: TrackedReplica): boolean =>
  !r.stopRequested && (r.state === 'pending' || r.state === 'starting' || r.state === 'ready' || r.state === 'crashed');

/** Which slot to give up first: ones that do not serve, then the newest ready ones. */
const STOP_ORDER: Readonly<Record<ReplicaState, number>> = { crashed: 0, pending: 1, starting: 2, ready: 3, terminating: 9, stopped: 9 };

/** Crashes of `revision` in the window at `now`. */
export function crashesOf(a: TrackedApi, revision: string, now: number): number {
  return a.crashes.get(revision)?.count(now) ?? 0;
}

/** A rollout is halted when the revision being rolled out (not yet stable) crash-loops. */
export function isHalted(a: TrackedApi, now: number, rule: CrashLoopRule): boolean {
  if (!a.stable || a.stable.revision === a.current.revision) return false;
  return crashesOf(a, a.current.revision, now) >= rule.threshold;
}

/** What one reconcile step does: replicas to give up (in order), and how many to create per revision. */
export interface ReconcileStep<R extends TrackedReplica> {
  readonly stop: readonly R[];
  readonly startCurrent: number;
  /** Replicas of the stable revision to create (a halted rollout brings it back to `requested`). */
  readonly startStable: number;
  readonly halted: boolean;
}

/**
 * The next step towards `requested` replicas of the current revision under its RollingUpdate
 * budget (`planRollout`), choosing which replicas go: within the current revision crashed, then
 * pending, starting and ready ones, newest first; of older revisions the ones not ready first, then
 * ready ones of revisions that never fully rolled out before the stable revision's.
 */
export function reconcileStep<R extends TrackedReplica>(a: TrackedApi<R>, now: number, rule: CrashLoopRule): ReconcileStep<R> {
  const cur = a.current.revision;
  const slots = [...a.replicas.values()].filter(isSlot);
  const curSlots = slots.filter((r) => r.revision === cur);
  const oldSlots = slots.filter((r) => r.revision !== cur);
  const halted = isHalted(a, now, rule);
  const plan = planRollout({
    requested: a.requested,
    budget: resolveUpdateBudget(a.current.spec.updateStrategy, a.requested),
    current: { slots: curSlots.length, ready: curSlots.filter((r) => r.state === 'ready').length },
    old: { slots: oldSlots.length, ready: oldSlots.filter((r) => r.state === 'ready').length },
    halted,
  });
  // Newest first within a state: the youngest replicas have served least.
  const byStopOrder = (x: R, y: R): number => STOP_ORDER[x.state] - STOP_ORDER[y.state] || y.n - x.n;
  const stableRev = a.stable?.revision;
  const oldReady = oldSlots
    .filter((x) => x.state === 'ready')
    .sort((x, y) => Number(x.revision === stableRev) - Number(y.revision === stableRev) || y.n - x.n);
  return {
    stop: [
      ...[...curSlots].sort(byStopOrder).slice(0, plan.stopCurrent),
      ...oldSlots.filter((x) => x.state !== 'ready').slice(0, plan.stopOldNotReady),
      ...oldReady.slice(0, plan.stopOldReady),
    ],
    startCurrent: plan.startCurrent,
    startStable: a.stable ? plan.startOld : 0,
    halted,
  };
}

/** Where a rollout stands: ready replicas of the current revision and of older ones. */
export interface RolloutState {
  readonly updated: number;
  readonly stale: number;
  /** Every replica runs the current revision, exactly `requested` of them, all ready. */
  readonly done: boolean;
}

export function rolloutState(a: TrackedApi): RolloutState {
  const cur = a.current.revision;
  let updated = 0;
  let stale = 0;
  let oldAlive = 0;
  let curSlots = 0;
  for (const r of a.replicas.values()) {
    if (r.revision !== cur) {
      if (r.state !== 'stopped') oldAlive++;
      if (r.state === 'ready') stale++;
    } else {
      if (r.state === 'ready') updated++;
      if (isSlot(r)) curSlots++;
    }
  }
  return { updated, stale, done: oldAlive === 0 && updated >= a.requested && curSlots === a.requested };
}

/**
 * The port's `ApiReplicaStatus`: counts of the current revision, crashes in the window, and a
 * message for a halted rollout, a crash loop or compute that is not free.
 */
export function apiReplicaStatus(a: TrackedApi, now: number, rule: CrashLoopRule): ApiReplicaStatus {
  const cur = a.current.revision;
  let upToDate = 0;
  let stale = 0;
  let pending = 0;
  let starting = 0;
  let pendingReason: string | undefined;
  for (const r of a.replicas.values()) {
    if (r.state === 'ready') {
      if (r.revision === cur) upToDate++;
      else stale++;
    } else if (r.revision === cur && !r.stopRequested) {
      if (r.state === 'pending') {
        pending++;
        pendingReason ??= r.pendingReason;
      } else if (r.state === 'starting') starting++;
    }
  }
  const failed = crashesOf(a, cur, now);
  const crashLooping = failed >= rule.threshold;
  const recentCrash = a.lastCrash && a.lastCrash.revision === cur && failed > 0 ? a.lastCrash : undefined;
  const counts = `${failed} crashes in ${formatDuration(rule.windowMs)}`;
  const reason = recentCrash?.reason ?? 'unknown';
  let message: string | undefined;
  if (isHalted(a, now, rule)) {
    message = crashMessage(`revision ${cur} keeps crashing`, counts, reason, `; rollout stopped, revision ${a.stable!.revision} still serving (${stale} ready)`);
  } else if (crashLooping) {
    message = crashMessage('replicas keep crashing', counts, reason);
  } else if (pendingReason) {
    message = pendingReason;
  }
  return {
    api: a.name,
    revision: cur,
    requested: a.requested,
    upToDate,
    stale,
    pending,
    starting,
    failed,
    crashLooping,
    computeUnavailable: pendingReason !== undefined,
    lastLogLines: recentCrash?.lines ?? [],
    ...(message ? { message } : {}),
  };
}

/** Lines of a replica's last output carried by a crash reason whose exit says nothing more. */
const CRASH_REASON_LINES = 5;
const CRASH_REASON_MAX_CHARS = 2048;

/** The port's view of one replica. */
export function replicaInfo(r: TrackedReplica): ReplicaInfo {
  const serving = r.state === 'starting' || r.state === 'ready' || r.state === 'terminating';
  return {
    id: r.id,
    api: r.api,
    revision: r.revision,
    state: r.state,
    createdAt: r.createdAt,
    ...(r.address && serving ? { address: r.address } : {}),
    ...(r.pid !== undefined ? { pid: r.pid } : {}),
    ...(r.readyAt !== undefined ? { readyAt: r.readyAt } : {}),
    ...(r.pendingReason !== undefined ? { pendingReason: r.pendingReason } : {}),
    ...(r.exit && r.state === 'crashed' ? { exitCode: r.exit.code, signal: r.exit.signal, crashReason: crashReasonOf(r.exit, r.lines.lines(CRASH_REASON_LINES)) } : {}),
  };
}

/**
 * Why a replica ended, for status messages: `predictor failed to start: <what the replica said>`
 * (may be several lines, e.g. the end of a Python traceback), `could not start: …`,
 * `killed by SIGKILL` or `exit code 1`.
 */
export function describeExit(e: ReplicaExit): string {
  if (e.error) return `could not start: ${e.error.message}`;
  if (e.failure) return `predictor failed to start: ${e.failure}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exit code ${e.code}`;
}

/**
 * `describeExit`, and for a bare exit code or signal the replica's last output lines too, bounded so
 * that the `replica.crashed` event carrying it stays small.
 */
export function crashReasonOf(e: ReplicaExit, lastLines: readonly string[]): string {
  const reason = describeExit(e);
  const text = e.failure || e.error || lastLines.length === 0 ? reason : `${reason}; last output:\n${lastLines.join('\n')}`;
  return text.length > CRASH_REASON_MAX_CHARS ? `${text.slice(0, CRASH_REASON_MAX_CHARS)}…` : text;
}

/** The first line of a reason, marked `…` when there is more (for one-line log notes). */
export function firstLine(reason: string): string {
  const nl = reason.indexOf('\n');
  return nl < 0 ? reason : `${reason.slice(0, nl)} …`;
}

/**
 * `<head> (<counts>, last: <reason>)<tail>` for a one-line reason; a multi-line one (a traceback)
 * goes last, after `last crash:`, so the counts stay on the first line.
 */
export function crashMessage(head: string, counts: string, reason: string, tail = ''): string {
  return reason.includes('\n') ? `${head} (${counts})${tail}; last crash: ${reason}` : `${head} (${counts}, last: ${reason})${tail}`;
}
