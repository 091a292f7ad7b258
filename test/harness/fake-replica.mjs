#!/usr/bin/env node
// A tiny but real replica process for orchestrator tests. It follows the local launcher contract
// (adapters/orchestrators/local/replica-launcher.ts): reads MYELIN_* from the environment, listens
// on MYELIN_HOST:MYELIN_PORT, reports its port over IPC, answers GET /healthz/ready, drains on
// SIGTERM and exits when the IPC channel closes.
//
// Behaviour, from the environment (set through the spec's predictor.env or the launcher):
//   FAKE_READY_DELAY_MS      /healthz/ready answers 503 until this long after start (default 0)
//   FAKE_START_UNREADY=1     /healthz/ready answers 503 until POST /ready
//   FAKE_SEND_READY=1        sends { type: 'myelin.replica.ready' } over IPC once ready (FAKE_READY_DELAY_MS)
//   FAKE_CRASH_ON_START=1    write a few lines, then exit with FAKE_EXIT_CODE (default 3) at once
//   FAKE_FAIL_MESSAGE        send { type: 'myelin.replica.failed', message: FAKE_FAIL_MESSAGE } over IPC,
//                            then exit with code 1 (what replica-main does when the predictor cannot start)
//   FAKE_CRASH_AFTER_MS      exit with FAKE_EXIT_CODE this long after start
//   FAKE_IGNORE_SIGTERM=1    ignore SIGTERM (to test the SIGKILL after the grace period)
//   FAKE_PREDICT_MS          POST / answers after this long (default 50)
//   FAKE_SAMPLE_INTERVAL_MS  send a `myelin.metrics` sample over IPC this often (default: never)
// HTTP:
//   POST /        → 200 {"replica","revision"} after FAKE_PREDICT_MS
//   POST /crash   → exits with code 1 right away (no answer)
//   POST /unready → /healthz/ready answers 503 from now on
//   POST /ready   → /healthz/ready answers 200 again
//   GET /env      → {"env": MYELIN_*, CUDA_VISIBLE_DEVICES and USER_*, "specName": name in MYELIN_SPEC_FILE,
//                    "pid", "cwd", "probes": readiness requests answered so far}
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const env = process.env;
const id = env.MYELIN_REPLICA_ID ?? 'unknown';
const startedAt = Date.now();
const readyDelayMs = Number(env.FAKE_READY_DELAY_MS ?? 0);
const predictMs = Number(env.FAKE_PREDICT_MS ?? 50);
const exitCode = Number(env.FAKE_EXIT_CODE ?? 3);
let forcedUnready = env.FAKE_START_UNREADY === '1';
let probes = 0;
let draining = false;

console.log(`fake replica ${id} starting (pid ${process.pid})`);
console.error(`fake replica ${id} stderr line`);

if (env.FAKE_FAIL_MESSAGE !== undefined) {
  console.error(`fake replica ${id}: predictor cannot start`);
  // Exit once the message is written to the channel, as replica-main does.
  process.send?.({ type: 'myelin.replica.failed', message: env.FAKE_FAIL_MESSAGE }, () => process.exit(1));
  if (!process.send) process.exit(1);
} else if (env.FAKE_CRASH_ON_START === '1') {
  console.log(`fake replica ${id}: loading predictor`);
  console.error(`Error: predictor failed to load in ${id}`);
  process.exitCode = exitCode;
  // Let the pipes drain before the process ends.
  setTimeout(() => process.exit(exitCode), 10);
} else {
  start();
}

function start() {
  let specName = null;
  try {
    specName = JSON.parse(readFileSync(env.MYELIN_SPEC_FILE ?? '', 'utf8')).name;
  } catch (err) {
    console.error(`cannot read spec file: ${err.message}`);
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/healthz/ready') {
      probes++;
      const ready = !draining && !forcedUnready && Date.now() - startedAt >= readyDelayMs;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready' : 'not ready');
      return;
    }
    if (req.method === 'GET' && url === '/env') {
      const picked = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('MYELIN_') || k === 'CUDA_VISIBLE_DEVICES' || k.startsWith('USER_')));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ env: picked, specName, pid: process.pid, cwd: process.cwd(), probes }));
      return;
    }
    if (req.method === 'POST' && url === '/crash') {
      console.error(`fake replica ${id}: told to crash`);
      setTimeout(() => process.exit(1), 5);
      return;
    }
    if (req.method === 'POST' && (url === '/unready' || url === '/ready')) {
      forcedUnready = url === '/unready';
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'POST' && url === '/') {
      req.resume();
      req.on('end', () => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ replica: id, revision: env.MYELIN_REVISION }));
        }, predictMs);
      });
      return;
    }
    res.writeHead(404).end();
  });

  server.listen(Number(env.MYELIN_PORT ?? 0), env.MYELIN_HOST ?? '127.0.0.1', () => {
    const { port } = server.address();
    console.log(`fake replica ${id} listening on ${port}`);
    process.send?.({ type: 'myelin.replica.listening', port });
    // As replica-main does once its predictor is loaded (FAKE_SEND_READY=1): the orchestrator probes at once.
    if (env.FAKE_SEND_READY === '1') setTimeout(() => process.send?.({ type: 'myelin.replica.ready' }), readyDelayMs);
  });

  if (env.FAKE_CRASH_AFTER_MS !== undefined) {
    setTimeout(() => {
      console.error(`fake replica ${id}: crashing as configured`);
      process.exit(exitCode);
    }, Number(env.FAKE_CRASH_AFTER_MS));
  }

  if (env.FAKE_SAMPLE_INTERVAL_MS !== undefined) {
    let seq = 0;
    setInterval(() => {
      process.send?.({
        type: 'myelin.metrics',
        sample: {
          v: 1,
          api: env.MYELIN_API,
          replica: id,
          revision: env.MYELIN_REVISION,
          seq: seq++,
          t: Date.now(),
          intervalMs: Number(env.FAKE_SAMPLE_INTERVAL_MS),
          inFlight: 0,
          inFlightMax: 0,
          requests: { '2xx': 0, '4xx': 0, '5xx': 0 },
          latencyMsSum: 0,
          ready: true,
        },
      });
    }, Number(env.FAKE_SAMPLE_INTERVAL_MS));
  }

  process.on('SIGTERM', () => {
    if (env.FAKE_IGNORE_SIGTERM === '1') {
      console.log(`fake replica ${id}: ignoring SIGTERM`);
      return;
    }
    console.log(`fake replica ${id}: SIGTERM, draining`);
    draining = true;
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}

// The orchestrator went away: never outlive it.
process.on('disconnect', () => process.exit(0));
