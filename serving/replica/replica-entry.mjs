#!/usr/bin/env node
// Entry of a replica process: `node serving/replica/replica-entry.mjs` with the environment described in
// serving/replica/replica-main.ts (MYELIN_SPEC_FILE or MYELIN_API_SPEC, MYELIN_PORT, …). Registers tsx
// first, so the TypeScript sources and TypeScript predictor files load with no build step.
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
// onnxruntime (1.29+) writes a telemetry database under ~/.cache/Microsoft and an empty /tmp/mat-debug-<pid>.log
// per process unless told not to; it reads this when its environment is created, so it is set before any thread loads it.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
const { register } = await import('tsx/esm/api');
register();
const { runReplicaProcess } = await import('./replica-main.ts');
await runReplicaProcess(process.env);
