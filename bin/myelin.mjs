#!/usr/bin/env node
// Entry point: loads the TypeScript sources through tsx (no build step), then runs the CLI.
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
// onnxruntime: no telemetry database under ~/.cache, no /tmp/mat-debug-<pid>.log (docs/predictors.md).
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../tsconfig.json', import.meta.url));
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../serving/cli/main.ts');
await main(process.argv);
