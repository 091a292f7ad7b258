#!/usr/bin/env node
// Entry point: loads the TypeScript sources through tsx (no build step), then runs the CLI.
process.env.ONNXRUNTIME_NODE_INSTALL ??= 'skip';
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../serving/cli/main.ts');
await main(process.argv);
