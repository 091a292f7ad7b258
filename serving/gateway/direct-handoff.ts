import type { Socket } from 'node:net';
import { VIA_REPLICA_HEADER } from '../replica/direct-connection-protocol.js';

/**
 * The IPC channel of a local replica process, as much as direct connections need: a node
 * `ChildProcess` spawned with an `'ipc'` stdio entry fits it as it is.
 */
export interface DirectChannel {
  readonly connected?: boolean;
  send(message: object, sendHandle?: unknown, options?: object, callback?: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

const SP = 0x20;
const LF = 0x0a;

/**
 * The path (no query) of the request whose first bytes `chunk` holds, when the gateway may hand its
 * connection to a replica: a complete request line `METHOD /path HTTP/1.x` (origin form), and no
 * `x-myelin-via-replica` header among the headers that arrived (a replica sending a request back
 * through the gateway). Null otherwise: the gateway serves the connection itself.
 *
 * Example: `POST /iris?x=1 HTTP/1.1\r\n…` ⇒ `/iris`; `GET http://h/iris HTTP/1.1` ⇒ null.
 */
export function directRequestPath(chunk: Buffer): string | null {
  const lineEnd = chunk.indexOf(LF);
  if (lineEnd < 0) return null;
  const sp1 = chunk.indexOf(SP);
  if (sp1 <= 0 || sp1 > lineEnd) return null;
  const sp2 = chunk.indexOf(SP, sp1 + 1);
  if (sp2 < 0 || sp2 > lineEnd) return null;
  if (chunk[sp1 + 1] !== 0x2f /* '/' */) return null;
  if (chunk.toString('latin1', sp2 + 1, sp2 + 8) !== 'HTTP/1.') return null;
  const headEnd = chunk.indexOf('\r\n\r\n', lineEnd - 1, 'latin1');
  const head = chunk.toString('latin1', lineEnd + 1, headEnd < 0 ? chunk.length : headEnd).toLowerCase();
  if (head.startsWith(`${VIA_REPLICA_HEADER}:`) || head.includes(`\n${VIA_REPLICA_HEADER}:`)) return null;
  const target = chunk.toString('latin1', sp1 + 1, sp2);
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

interface NodeStreamHandle {
  reading?: boolean;
  readStop?: () => number;
}

/**
 * Stops the socket's reads at the source (libuv), not only its stream: called from its first `data`
 * event, so the chunk just delivered is the only one read, and nothing more is lost when the handle
 * is sent to another process. A later `resume()` starts reading again.
 */
export function stopReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: NodeStreamHandle | null })._handle;
  socket.pause();
  if (handle && handle.reading === true && typeof handle.readStop === 'function') {
    handle.reading = false;
    handle.readStop();
  }
}
