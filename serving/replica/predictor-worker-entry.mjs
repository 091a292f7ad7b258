// A predictor worker thread from the TypeScript sources: registers tsx in this thread, then loads
// predictor-worker-entry.ts (the compiled package loads predictor-worker-entry.js without tsx).
import { register } from 'tsx/esm/api';

// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
register();
const { default: handler } = await import('./predictor-worker-entry.ts');
export default handler;
