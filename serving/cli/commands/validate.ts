import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { DEFAULT_GATEWAY_PORT, type ApiSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatDuration } from '../../../core/config/quantities.js';
import { formatCompute, type DeployTarget } from '../../../core/config/resolve-api.js';
import { formatConfigProblem, type ConfigProblem } from '../../../core/errors.js';
import { ExitError } from '../exit-error.js';
import { renderTable, type Column } from '../table.js';

export interface ValidateOptions {
  /** Configuration file, or a folder holding myelin.yaml / cortex.yaml (default: the current folder). */
  readonly file?: string;
  readonly cwd: string;
  readonly output: 'table' | 'yaml' | 'json';
  /** Where the replicas will run (default `local`): decides which fields are reported as having no effect. */
  readonly target?: DeployTarget;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export interface ValidateResult {
  /** The file that was checked, as shown in messages. */
  readonly file: string;
  readonly specs: readonly ApiSpec[];
  readonly warnings: readonly ConfigProblem[];
}

/** Names tried, in order, when no file (or a folder) is given. */
export const DEFAULT_CONFIG_NAMES = ['myelin.yaml', 'cortex.yaml'] as const;

/**
 * Picks the configuration file: `file` itself; inside a folder `file` (or the current folder when
 * absent), `myelin.yaml`, else `cortex.yaml`. Throws `ExitError(1)` when there is none.
 * Returns the name relative to `cwd` when it is inside it (that is what messages show).
 */
export function findConfigFile(cwd: string, file?: string): string {
  const given = file ?? '.';
  const abs = resolve(cwd, given);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    return given; // the loader reports a missing file with its name
  }
  if (!isDir) return given;
  for (const name of DEFAULT_CONFIG_NAMES) {
    const candidate = join(abs, name);
    if (existsSync(candidate)) {
      const rel = relative(cwd, candidate);
      return rel.startsWith('..') ? candidate : rel;
    }
  }
  throw new ExitError(1, `error: no configuration file given, and neither ${DEFAULT_CONFIG_NAMES.join(' nor ')} is in ${abs}`);
}

const columns: readonly Column<ApiSpec>[] = [
  { title: 'name', value: (s) => s.name },
  { title: 'kind', value: (s) => (s.dialect === 'legacy' ? 'api (legacy)' : s.kind) },
  { title: 'predictor', value: (s) => s.predictor.typeAsWritten },
  { title: 'endpoint', value: (s) => (s.networking.localPort === DEFAULT_GATEWAY_PORT ? s.networking.endpoint : `:${s.networking.localPort}${s.networking.endpoint}`) },
  { title: 'replicas (min/init/max)', value: (s) => `${s.autoscaling.minReplicas}/${s.autoscaling.initReplicas}/${s.autoscaling.maxReplicas}` },
  { title: 'policy', value: (s) => `${s.autoscaling.policy} (tick ${formatDuration(s.autoscaling.tickMs)})` },
  {
    title: 'target',
    value: (s) => (s.autoscaling.policy === 'cpu' ? `${s.autoscaling.targetCpuUtilization}% cpu` : `${s.autoscaling.targetReplicaConcurrency} in flight`),
  },
  { title: 'compute', value: (s) => formatCompute(s.compute) },
];

/** Renders the resolved specs for people (a table) or scripts (`json`, `yaml`: `{ file, apis, warnings }`). */
export function renderValidation(result: ValidateResult, output: ValidateOptions['output']): string {
  const data = { file: result.file, apis: result.specs, warnings: result.warnings };
  if (output === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (output === 'yaml') return stringify(data, { aliasDuplicateObjects: false });
  return renderTable(result.specs, columns);
}

/**
 * `myelin validate [file] [-o table|yaml|json] [--target local|kubernetes]`: loads the file with the
 * same loader `deploy` and the daemon use, prints the resolved APIs on stdout and the warnings on
 * stderr, and returns them. An invalid file throws the loader's `ConfigError` (every problem; the CLI
 * prints each and exits 1).
 */
export async function validate(options: ValidateOptions): Promise<ValidateResult> {
  const file = findConfigFile(options.cwd, options.file);
  const { specs, warnings } = await loadApiSpecsFromFile(file, { files: nodeProjectFileSystem, cwd: options.cwd, target: options.target ?? 'local' });
  const result: ValidateResult = { file, specs, warnings };
  for (const w of warnings) options.stderr.write(`${formatConfigProblem(w)}\n`);
  options.stdout.write(renderValidation(result, options.output));
  return result;
}
