import { spawn, type ChildProcess } from 'node:child_process';
import type { ReplicaAddress } from '../../../core/ports/orchestrator-target.js';
import { LineSplitter } from './line-ring.js';
import { failureMessageOf, isReadyMessage, listeningAddressOf, replicaEventOf } from './replica-launcher.js';

/** How a replica process ended. */
export interface ReplicaExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. a missing working folder). */
  readonly error?: Error;
  /**
   * What the replica said in its `myelin.replica.failed` message before it exited (its predictor
   * could not start), bounded by `boundFailureMessage`; the last such message when it sent several.
   */
  readonly failure?: string;
}

export interface ReplicaProcessSpawn {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export interface ReplicaProcessHandlers {
  onLine(line: string, stream: 'stdout' | 'stderr'): void;
  onListening(address: ReplicaAddress): void;
  /** The replica said its predictor is loaded (`myelin.replica.ready`). */
  onReadyHint?(): void;
  /** A `myelin.replica.event` message's event, unchecked (the caller validates and attributes it). */
  onEvent?(event: unknown): void;
  /** Called exactly once, after the last output line was delivered. */
  onExit(exit: ReplicaExit): void;
}

/** After `exit`, how long to wait for the output pipes to close before reporting the exit anyway (a grandchild may hold them). */
const PIPE_CLOSE_WAIT_MS = 1000;

/**
 * One child process running a replica: started at construction with an IPC channel, its output
 * split into lines, its `myelin.replica.listening` message turned into an address and its
 * `myelin.replica.failed` message kept for the exit (`ReplicaExit.failure`). `stop` signals
 * only this child's PID, and only while Node still owns it (before its exit was observed).
 */
export class ReplicaProcess {
  readonly child: ChildProcess;
  private exit: ReplicaExit | null = null;
  private readonly exited: Promise<ReplicaExit>;
  private resolveExited!: (e: ReplicaExit) => void;

  constructor(launch: ReplicaProcessSpawn, handlers: ReplicaProcessHandlers) {
    this.exited = new Promise((r) => (this.resolveExited = r));
    this.child = spawn(launch.command, [...launch.args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...launch.env },
      cwd: launch.cwd,
      windowsHide: true,
      // Its own process group: Ctrl-C on a foreground daemon reaches the daemon only, which then drains
      // the replicas itself. A replica whose daemon dies still exits (its IPC channel closes).
      detached: true,
    });
    const out = new LineSplitter((l) => handlers.onLine(l, 'stdout'));
    const err = new LineSplitter((l) => handlers.onLine(l, 'stderr'));
    this.child.stdout?.setEncoding('utf8').on('data', (c: string) => out.write(c));
    this.child.stderr?.setEncoding('utf8').on('data', (c: string) => err.write(c));
    let failure: string | undefined;
    this.child.on('message', (msg) => {
      const address = listeningAddressOf(msg);
      if (address) handlers.onListening(address);
      if (isReadyMessage(msg)) handlers.onReadyHint?.();
      failure = failureMessageOf(msg) ?? failure;
      const event = replicaEventOf(msg);
      if (event !== null) handlers.onEvent?.(event);
    });
    let exitInfo: ReplicaExit | null = null;
    let pipeTimer: NodeJS.Timeout | undefined;
    const finish = (e: ReplicaExit): void => {
      if (this.exit) return;
      clearTimeout(pipeTimer);
      out.end();
      err.end();
      // IPC messages are delivered before `close` (the channel is one of the pipes it waits for).
      this.exit = failure !== undefined ? { ...e, failure } : e;
      handlers.onExit(this.exit);
      this.resolveExited(this.exit);
    };
    this.child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      pipeTimer = setTimeout(() => finish(exitInfo!), PIPE_CLOSE_WAIT_MS);
    });
    this.child.on('close', (code, signal) => finish(exitInfo ?? { code, signal }));
    // A process that could not start has no PID and reports only `error`. Later errors (an IPC
    // write to a child that just died) belong to the exit path above.
    this.child.on('error', (e) => {
      if (this.child.pid === undefined) finish({ code: null, signal: null, error: e });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the exit was reported. */
  get running(): boolean {
    return this.exit === null;
  }

  /** Resolves with the exit, whoever caused it. */
  whenExited(): Promise<ReplicaExit> {
    return this.exited;
  }

  /**
   * SIGTERM, then SIGKILL if the process is still there after `graceMs`; resolves on exit (or after
   * `killWaitMs` more if even SIGKILL was not reported, which leaves `running` true).
   */
  async stop(graceMs: number, killWaitMs = 5000): Promise<ReplicaExit | null> {
    if (!this.running) return this.exit;
    this.signal('SIGTERM');
    if (await this.exitWithin(graceMs)) return this.exit;
    this.signal('SIGKILL');
    return (await this.exitWithin(killWaitMs)) ? this.exit : null;
  }

  /** Sends `sig` to this child only, and only if its exit was not seen yet (so a recycled PID is never hit). */
  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) this.child.kill(sig);
  }

  private exitWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}
