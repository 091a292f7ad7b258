import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecs, type LoadApiSpecsOptions, type LoadApiSpecsResult } from '../../../core/config/load-api-specs.js';
import { ConfigError, formatConfigProblem } from '../../../core/errors.js';

/** A temporary project folder; `files` maps relative paths to contents (a path ending in `/` is a folder). */
export function makeProject(files: Readonly<Record<string, string>> = {}): { dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-config-'));
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(dir, rel);
    if (rel.endsWith('/')) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
  }
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

export type Outcome = { readonly ok: true; readonly result: LoadApiSpecsResult; readonly lines: readonly string[] } | { readonly ok: false; readonly error: ConfigError; readonly lines: readonly string[] };

/**
 * Loads `yaml` as `cortex.yaml` in a temporary project holding `files`, with the real file probe.
 * `lines` are the formatted problems (warnings on success, everything on failure) without the `cortex.yaml:` prefix.
 */
export function loadIn(yaml: string, files: Readonly<Record<string, string>> = {}, options: Partial<LoadApiSpecsOptions> = {}): Outcome & { dir: string } {
  using project = makeProject(files);
  return { ...loadText(yaml, { file: 'cortex.yaml', cwd: project.dir, probe: nodeProjectFileSystem, ...options }), dir: project.dir };
}

export function loadText(yaml: string, options: LoadApiSpecsOptions): Outcome {
  const strip = (s: string): string => (s.startsWith(`${options.file}:`) ? s.slice(options.file.length + 1) : s);
  try {
    const result = loadApiSpecs(yaml, options);
    return { ok: true, result, lines: result.warnings.map((w) => strip(formatConfigProblem(w))) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, error: err, lines: err.problems.map((p) => strip(formatConfigProblem(p))) };
  }
}

/** Common project files: predictor files of each kind, a request handler and local models. */
export const PROJECT_FILES: Readonly<Record<string, string>> = {
  'predictor.py': 'class PythonPredictor:\n    def __init__(self, config):\n        pass\n    def predict(self, payload):\n        return payload\n',
  'predictor.ts': 'export class Predictor { predict() { return 1; } }\n',
  'onnx_predictor.py': 'class ONNXPredictor:\n    pass\n',
  'handler.py': 'def pre_inference(sample, metadata):\n    return sample\n',
  'handler.ts': 'export function pre_inference(s: unknown) { return s; }\n',
  'model.onnx': 'not really a model; the loader only checks that it exists',
  'models/iris/saved_model.pb': 'x',
  'models/a/1/model.onnx': 'x',
  'models/b/model.onnx': 'x',
  'lib/': '',
};
