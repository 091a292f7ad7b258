import type { Observable } from 'rxjs';
import type { IpcMessageSource } from './metrics-transport.js';

/**
 * The process side of a replica the daemon started on this machine, as much as the daemon needs: its
 * IPC channel (`IpcMessageSource`, what `ChildMetricsSink.attachChild` reads samples from) and its
 * `exit`, after which the daemon stops listening.
 *
 * A minimal structural type rather than `import type { ChildProcess } from 'node:child_process'`: core
 * stays free of Node's process types (as `IpcMessageSource` already is), a test can hand in an
 * `EventEmitter`, and a node `ChildProcess` forked or spawned with an `'ipc'` stdio entry fits it
 * without a cast, so the local orchestrator's `SpawnedReplica` satisfies `ReplicaSpawn` as it is.
 */
export interface ReplicaProcessChannel extends IpcMessageSource {
  once(event: 'exit', listener: () => void): unknown;
  /** Whether the IPC channel is open (a `ChildProcess`'s `connected`). */
  readonly connected?: boolean;
  /** Sends over the IPC channel, with a handle (a socket: direct connections, docs/gateway.md) when given. */
  send?(message: object, sendHandle?: unknown, options?: object, callback?: (error: Error | null) => void): boolean;
}

/** One replica process, as it is started. */
export interface ReplicaSpawn {
  readonly api: string;
  /** The replica's id (`ReplicaInfo.id`). */
  readonly replica: string;
  readonly revision: string;
  readonly child: ReplicaProcessChannel;
}

/**
 * Tells who starts replica processes on this machine that each one has started, so the composition
 * root can wire their IPC channels (metric samples into the `local` transport's `ChildMetricsSink`).
 * Bound only by targets that run local processes (`localOrchestratorModule`, to its `LocalOrchestrator`
 * singleton); a target without them (kubernetes) binds nothing, and callers check `isBound` first.
 */
export const ReplicaSpawnSource = Symbol('ReplicaSpawnSource');
export interface ReplicaSpawnSource {
  /**
   * Every replica process once it is started (hot: only spawns after subscribing; never errors;
   * completes when its owner closes). Emitted in the same tick the process is started, so a
   * subscriber that attaches its listeners synchronously misses none of the child's IPC messages.
   */
  spawns$(): Observable<ReplicaSpawn>;
}
