#!/usr/bin/env node
// A replica process from the TypeScript sources: registers tsx, then runs replica-entry.ts (the
// compiled package runs dist/serving/replica/replica-entry.js directly, without tsx).
// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
const { register } = await import('tsx/esm/api');
register();
await import('./replica-entry.ts');
