import { Agent } from 'node:http';
import type { ReplicaAddress } from '../../core/ports/orchestrator-target.js';

/** Agent tuning shared by every replica connection pool. */
export interface UpstreamAgentOptions {
  /** Most sockets opened to one replica; the gateway never has more requests outstanding than this. */
  readonly maxSockets: number;
  /** Idle keep-alive sockets kept per replica. */
  readonly maxFreeSockets: number;
  /**
   * Idle sockets are closed after this long, ms. Below Node's default server keep-alive timeout (5 s),
   * so the gateway closes an idle connection before the replica does and never writes a request into a
   * socket the replica is closing (the keep-alive race). A replica's `Keep-Alive: timeout=N` hint
   * lowers it further (Node's agent reads it).
   */
  readonly freeSocketTimeoutMs: number;
}

export const DEFAULT_AGENT_OPTIONS: UpstreamAgentOptions = {
  maxSockets: 1024,
  maxFreeSockets: 256,
  freeSocketTimeoutMs: 4000,
};

/**
 * What the gateway knows of a replica process's direct connections (docs/gateway.md): connections
 * handed to it and not reported closed, and the requests in flight on them as it last reported.
 */
export class DirectCounts {
  direct = 0;
  inFlight = 0;
}

/** A stable key for an address (`127.0.0.1:41234`, `unix:/run/r.sock`). */
export function addressKey(a: ReplicaAddress): string {
  return 'socketPath' in a ? `unix:${a.socketPath}` : `${a.host}:${a.port}`;
}

/**
 * One ready replica as the gateway sees it: where it listens, its own keep-alive connection pool, and
 * how many requests the gateway has outstanding on it. Lives as long as the replica is ready plus as
 * long as requests it accepted are still running (a retired upstream gets no new requests; its agent is
 * destroyed when the last one finishes).
 */
export class Upstream {
  readonly id: string;
  readonly api: string;
  readonly key: string;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly socketPath: string | undefined;
  readonly agent: Agent;
  /** Requests sent (or being connected) to this replica and not finished yet. */
  outstanding = 0;
  /** Its replica process's direct connections: the gateway's one object per replica, shared by every `Upstream` of it. */
  directCounts = new DirectCounts();

  /** Client connections handed to it and not reported closed: what new connections are balanced by (with `outstanding`). */
  get direct(): number {
    return this.directCounts.direct;
  }

  /** Requests in flight on those connections, as last reported: added to `outstanding` when proxied requests are balanced and limited. */
  get directInFlight(): number {
    return this.directCounts.inFlight;
  }
  /** Total requests the gateway sent to it (attempts, including refused connections). */
  attempts = 0;
  /** Until when (ms, on the gateway's monotonic clock) a refused connection keeps it at the back of the queue. */
  ejectedUntilMs = 0;
  /** Left the ready set: takes no new requests. */
  retired = false;

  constructor(id: string, api: string, address: ReplicaAddress, agentOptions: UpstreamAgentOptions) {
    this.id = id;
    this.api = api;
    this.key = addressKey(address);
    if ('socketPath' in address) {
      this.socketPath = address.socketPath;
    } else {
      this.host = address.host;
      this.port = address.port;
    }
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: agentOptions.maxSockets,
      maxFreeSockets: agentOptions.maxFreeSockets,
      timeout: agentOptions.freeSocketTimeoutMs,
      // Most recently used socket first: keeps a small hot set of connections under light load.
      scheduling: 'lifo',
      // Passed through to net.createConnection: headers and a small body go out without Nagle delay.
      noDelay: true,
    } as ConstructorParameters<typeof Agent>[0]);
  }

  /** One more request on this replica. */
  acquire(): void {
    this.outstanding++;
    this.attempts++;
  }

  /** A request finished (response done, failed, or abandoned). */
  release(): void {
    this.outstanding--;
    if (this.outstanding === 0 && this.retired) this.agent.destroy();
  }

  /** The replica left the ready set: no new requests; the agent goes when the in-flight ones finish. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    if (this.outstanding === 0) this.agent.destroy();
  }
}
