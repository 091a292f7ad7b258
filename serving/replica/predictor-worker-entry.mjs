// Entry file of a predictor worker thread (piscina `filename`). Registers tsx in this thread, so the
// TypeScript sources and TypeScript predictor files load with no build step, then hands piscina the
// task handler once this thread's predictor instance is constructed (a top-level await: piscina waits
// for it before the worker takes tasks).
import { register } from 'tsx/esm/api';

// tsx reads the tsconfig of the working folder, which is the user's project: point it at ours (decorators).
process.env.TSX_TSCONFIG_PATH ??= (await import('node:url')).fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
register();
const { createWorkerHandler } = await import('./predictor-worker.ts');
export default await createWorkerHandler();
