#!/usr/bin/env node
// A tiny real replica for the replica-event tests: follows the launcher contract
// (adapters/orchestrators/local/replica-launcher.ts), listens on MYELIN_HOST:MYELIN_PORT, reports its
// port over IPC, then sends each message of EVENT_REPLICA_MESSAGES (a JSON array) over IPC as it is,
// and finally `{ type: 'myelin.replica.event', event: <model.version "sent"> }` so a test knows that
// everything before it arrived. GET /healthz/ready → 200; GET /env → the environment it was given
// (MYELIN_*, AWS_*). Exits on SIGTERM and when the IPC channel closes.
import { createServer } from 'node:http';

const env = process.env;
const messages = JSON.parse(env.EVENT_REPLICA_MESSAGES ?? '[]');
const server = createServer((req, res) => {
  if (req.url === '/env') {
    const picked = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('MYELIN_') || k.startsWith('AWS_')));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(picked));
    return;
  }
  res.writeHead(req.url === '/healthz/ready' ? 200 : 404).end();
});
server.listen(Number(env.MYELIN_PORT ?? 0), env.MYELIN_HOST ?? '127.0.0.1', () => {
  process.send?.({ type: 'myelin.replica.listening', port: server.address().port });
  for (const m of messages) process.send?.(m);
  process.send?.({
    type: 'myelin.replica.event',
    event: { v: 1, type: 'model.version', api: env.MYELIN_API, t: Date.now(), model: 'sent', version: '1', change: 'added' },
  });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
