#!/usr/bin/env node
// The CLI from the TypeScript sources (a clone; no build needed): registers tsx, then runs serving/cli/bin.ts.
// The npm package runs the compiled dist/serving/cli/bin.js instead (package.json "bin").
// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../tsconfig.json', import.meta.url));
const { register } = await import('tsx/esm/api');
register();
await import('../serving/cli/bin.ts');
