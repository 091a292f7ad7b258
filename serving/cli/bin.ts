#!/usr/bin/env node
// The `myelin` command of the package (compiled to dist/serving/cli/bin.js). From a clone, bin/myelin.mjs
// runs the same CLI from the TypeScript sources.
// onnxruntime-node must not try to download CUDA files, and writes no telemetry database under ~/.cache
// nor /tmp/mat-debug-<pid>.log (docs/predictors.md); both are read when it loads, so they are set before
// anything imports it: the CLI is imported dynamically below.
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { main } = await import('./main.js');
await main(process.argv);
