// Entry file of a predictor worker thread (piscina `filename`; compiled: predictor-worker-entry.js, from
// the sources predictor-worker-entry.mjs registers tsx first). Hands piscina the task handler once this
// thread's predictor instance is constructed (a top-level await: piscina waits for it before the worker
// takes tasks).
import { createWorkerHandler } from './predictor-worker.js';

export default await createWorkerHandler();
