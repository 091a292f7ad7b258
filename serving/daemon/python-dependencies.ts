import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { ConfigProblem } from '../../core/errors.js';
import { predictorRunsInPython, REQUIREMENTS_FILE, withPythonInterpreter } from '../../core/predictor/python-predictor.js';
import { RequirementsError, type PythonEnvCache } from './python-env-cache.js';

export { REQUIREMENTS_FILE } from '../../core/predictor/python-predictor.js';

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
  /**
   * Absent where replicas do not run on this machine (`--target kubernetes`): nothing is installed
   * here; each pod's init container installs the file (`myelin fetch-project --python-env`).
   */
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
  // Each warning points into the file it is about, at its first package or command (see firstContentPosition).
  const warn = async (file: string, message: string): Promise<void> => {
    const at = await firstContentPosition(join(input.projectDir, file));
    warnings.push({ file, line: at.line, col: at.col, message, severity: 'warning' });
  };
  for (const u of UNSUPPORTED_DEPENDENCY_FILES) if (await isFile(join(input.projectDir, u.file))) await warn(u.file, u.message);
  const requirementsFile = join(input.projectDir, REQUIREMENTS_FILE);
  if (!(await isFile(requirementsFile))) return { specs: input.specs, warnings };
  // Kubernetes: the pods install it (kubernetes-manifests.ts, `fetch-project --python-env`).
  if (!input.envs) return { specs: input.specs, warnings };
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

/** How much of a dependency file `firstContentPosition` reads, in bytes. */
const POSITION_SCAN_BYTES = 64 * 1024;

/**
 * Where a dependency file's content starts, 1-based: the first line that is neither blank nor a `#`
 * comment (requirements.txt, conda-packages.txt, environment.yml and shell scripts all comment with `#`),
 * at its first non-blank column — the first package that is not installed, the first command that is
 * not run. `{ line: 1, col: 1 }` when there is no such line in the first 64 KiB (an empty file, only
 * comments) or the file cannot be read: the warning is then about the file as a whole.
 */
export async function firstContentPosition(path: string): Promise<{ line: number; col: number }> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(POSITION_SCAN_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return { line: 1, col: 1 };
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const col = lines[i].search(/\S/);
    if (col >= 0 && lines[i][col] !== '#') return { line: i + 1, col: col + 1 };
  }
  return { line: 1, col: 1 };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
