import type { ApiSpec } from '../config/api-spec.js';

/** Environment variable naming the Python interpreter (process env, `predictor.env`, or `myelin up --python`). */
export const PYTHON_ENV = 'MYELIN_PYTHON';
/** The file installed into a Python API's virtualenv, at the project's root (as Cortex had it). */
export const REQUIREMENTS_FILE = 'requirements.txt';
/** The interpreter used when `MYELIN_PYTHON` is not set: `python3` on PATH. */
export const DEFAULT_PYTHON = 'python3';

/**
 * True when the API runs user code in Python (the bridge in plugins/predictor-python/): a
 * `predictor.type: python` predictor, or a `.py` predictor file or request handler for the onnx and
 * tensorflow types (Cortex's `ONNXPredictor`, `TensorFlowPredictor` and legacy `handler.py`). Pure:
 * decided from the spec's file names.
 */
export function predictorRunsInPython(spec: ApiSpec): boolean {
  const p = spec.predictor;
  if (p.type === 'python') return true;
  return (p.path ?? '').endsWith('.py') || (p.requestHandler ?? '').endsWith('.py');
}

/** The interpreter a replica runs: `predictor.env.MYELIN_PYTHON`, else the process's, else `python3`. */
export function pythonInterpreter(spec: ApiSpec, env: NodeJS.ProcessEnv = process.env): string {
  return spec.predictor.env[PYTHON_ENV] || env[PYTHON_ENV] || DEFAULT_PYTHON;
}

/** A copy of `spec` whose predictor runs `python` (`predictor.env.MYELIN_PYTHON`). */
export function withPythonInterpreter(spec: ApiSpec, python: string): ApiSpec {
  return Object.freeze({
    ...spec,
    predictor: Object.freeze({ ...spec.predictor, env: Object.freeze({ ...spec.predictor.env, [PYTHON_ENV]: python }) }),
  });
}
