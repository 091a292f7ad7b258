// Entry of a replica process (compiled: dist/serving/replica/replica-entry.js; from the sources,
// replica-entry.mjs registers tsx and imports this file), with the environment described in
// serving/replica/replica-main.ts (MYELIN_SPEC_FILE or MYELIN_API_SPEC, MYELIN_PORT, …).
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
// onnxruntime (1.29+) writes a telemetry database under ~/.cache/Microsoft and an empty /tmp/mat-debug-<pid>.log
// per process unless told not to; it reads this when its environment is created, so it is set before any thread loads it.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { runReplicaProcess } = await import('./replica-main.js');
await runReplicaProcess(process.env);
