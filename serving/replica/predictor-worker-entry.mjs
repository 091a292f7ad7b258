// Entry file of a predictor worker thread (piscina `filename`). Registers tsx in this thread, so the
// TypeScript sources and TypeScript predictor files load with no build step, then hands piscina the
// task handler once this thread's predictor instance is constructed (a top-level await: piscina waits
// for it before the worker takes tasks).
import { register } from 'tsx/esm/api';

register();
const { createWorkerHandler } = await import('./predictor-worker.ts');
export default await createWorkerHandler();
