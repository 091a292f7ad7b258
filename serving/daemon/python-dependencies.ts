import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { ConfigProblem } from '../../core/errors.js';
import { PYTHON_ENV, predictorRunsInPython } from '../../core/predictor/python-predictor.js';
import { RequirementsError, type PythonEnvCache } from './python-env-cache.js';

/** The file installed into the project's virtualenv, at the project's root (as Cortex had it). */
export const REQUIREMENTS_FILE = 'requirements.txt';

/** Files Cortex acted on that myelin does not run; each is a deploy warning for a Python project. */
export const UNSUPPORTED_DEPENDENCY_FILES: ReadonlyArray<{ readonly file: string; readonly message: string }> = [
  { file: 'dependencies.sh', message: 'not run by myelin (Cortex ran it in the API container at start); install system packages on this machine yourself, and list Python packages in requirements.txt' },
  { file: 'conda-packages.txt', message: 'not installed by myelin (there is no conda here); list the packages in requirements.txt, which is installed with pip' },
  { file: 'environment.yml', message: 'conda environments are not installed by myelin; list the packages in requirements.txt, which is installed with pip' },
  { file: 'environment.yaml', message: 'conda environments are not installed by myelin; list the packages in requirements.txt, which is installed with pip' },
];

export interface PreparePythonInput {
  /** Every API of the deploy, in file order. */
  readonly specs: readonly ApiSpec[];
  /** The unpacked project folder. */
  readonly projectDir: string;
  /** Absent where replicas do not run on this machine (`--target kubernetes`): nothing is installed. */
  readonly envs?: PythonEnvCache;
  /** Each line of the install's output, with the API it is reported under (the first Python API). */
  readonly onLine?: (api: string, line: string) => void;
}

export interface PreparedPython {
  /** The specs to apply: those that run Python carry `predictor.env.MYELIN_PYTHON` = the virtualenv's interpreter. */
  readonly specs: readonly ApiSpec[];
  readonly warnings: readonly ConfigProblem[];
}

/**
 * The Python side of a deploy, done before any API of it changes: when an API runs Python and the
 * project has `requirements.txt` at its root, the file is installed into its cached virtualenv
 * (`PythonEnvCache`) and every Python API gets that interpreter as `predictor.env.MYELIN_PYTHON` (a
 * copy of its spec; the revision changes with it, so other requirements roll the replicas). Projects
 * whose APIs run no Python are left alone, whatever files they hold. Throws `RequirementsError` when
 * the install fails (the deploy is refused; nothing was applied).
 */
export async function preparePython(input: PreparePythonInput): Promise<PreparedPython> {
  const python = input.specs.filter(predictorRunsInPython);
  if (python.length === 0) return { specs: input.specs, warnings: [] };
  const warnings: ConfigProblem[] = [];
  const warn = (file: string, message: string): void => {
    warnings.push({ file, line: 1, col: 1, message, severity: 'warning' });
  };
  for (const u of UNSUPPORTED_DEPENDENCY_FILES) if (await isFile(join(input.projectDir, u.file))) warn(u.file, u.message);
  const requirementsFile = join(input.projectDir, REQUIREMENTS_FILE);
  if (!(await isFile(requirementsFile))) return { specs: input.specs, warnings };
  if (!input.envs) {
    warn(REQUIREMENTS_FILE, 'not installed: replicas do not run on this machine (--target kubernetes), so their image must provide these packages');
    return { specs: input.specs, warnings };
  }
  const reporter = python[0].name;
  const names = python.map((s) => s.name).join(', ');
  let env;
  try {
    env = await input.envs.ensure({ requirementsFile, cwd: input.projectDir, onLine: (line) => input.onLine?.(reporter, line) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new RequirementsError(`${names}: ${message}`, { cause: err });
  }
  const interpreter = env.python;
  return {
    specs: input.specs.map((s) => (predictorRunsInPython(s) ? withPythonInterpreter(s, interpreter) : s)),
    warnings,
  };
}

/** A copy of `spec` whose predictor runs `python` (`predictor.env.MYELIN_PYTHON`). */
export function withPythonInterpreter(spec: ApiSpec, python: string): ApiSpec {
  return Object.freeze({
    ...spec,
    predictor: Object.freeze({ ...spec.predictor, env: Object.freeze({ ...spec.predictor.env, [PYTHON_ENV]: python }) }),
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
