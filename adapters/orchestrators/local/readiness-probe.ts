import { request } from 'node:http';
import type { ReplicaAddress } from '../../../core/ports/orchestrator-target.js';

/** Path of the replica's readiness endpoint. */
export const READINESS_PATH = '/healthz/ready';

/**
 * One readiness check: GET `/healthz/ready` on the replica, true only for a 200 within `timeoutMs`.
 * A refused connection, another status, or no answer in time is false. Never rejects. Opens a fresh
 * connection each time (no keep-alive), so a probe never holds a socket the replica must wait for.
 */
export function probeReady(address: ReplicaAddress, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    };
    const target = 'socketPath' in address ? { socketPath: address.socketPath } : { host: address.host, port: address.port };
    const req = request({ ...target, method: 'GET', path: READINESS_PATH, agent: false, headers: { connection: 'close' } }, (res) => {
      const ok = res.statusCode === 200;
      res.resume();
      res.once('end', () => done(ok));
      res.once('error', () => done(false));
    });
    const timer = setTimeout(() => done(false), timeoutMs);
    req.once('error', () => done(false));
    req.end();
  });
}
