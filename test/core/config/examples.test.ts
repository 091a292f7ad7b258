import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import legacySchema from '../../../config-schemas/api-legacy.schema.json' with { type: 'json' };
import realtimeSchema from '../../../config-schemas/api-realtime.schema.json' with { type: 'json' };
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { CPU_PATTERN, DURATION_PATTERN, formatDuration, INT_OR_PERCENT_PATTERN, MEMORY_PATTERN, parseDuration, parseMemory } from '../../../core/config/quantities.js';
import { DEFAULTS } from '../../../core/config/resolve-api.js';
import { fileValidator } from '../../../core/config/schema-validator.js';
import { ConfigError, formatConfigProblem } from '../../../core/errors.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const schemaExamples = join(repo, 'config-schemas/examples');

function dialectOf(data: unknown): 'realtime' | 'legacy' {
  return Array.isArray(data) && data.some((i) => i && typeof i === 'object' && ['api', 'deployment'].includes((i as { kind?: string }).kind ?? '')) ? 'legacy' : 'realtime';
}

async function loadsCleanly(file: string): Promise<void> {
  try {
    const { specs } = await loadApiSpecsFromFile(file, { files: nodeProjectFileSystem });
    assert.ok(specs.length > 0, `${file}: no APIs`);
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(`${file} does not validate:\n${err.problems.map(formatConfigProblem).join('\n')}`);
    throw err;
  }
}

const exampleFiles = readdirSync(schemaExamples).filter((f) => f.endsWith('.yaml')).sort();

test('config-schemas/examples holds examples of both dialects', () => {
  const dialects = new Set(exampleFiles.map((f) => dialectOf(parse(readFileSync(join(schemaExamples, f), 'utf8')))));
  assert.deepEqual([...dialects].sort(), ['legacy', 'realtime']);
});

for (const f of exampleFiles) {
  test(`config-schemas/examples/${f} matches its dialect's JSON Schema and loads`, async () => {
    const data = parse(readFileSync(join(schemaExamples, f), 'utf8'));
    const validate = fileValidator(dialectOf(data));
    assert.ok(validate(data), JSON.stringify(validate.errors, null, 2));
    await loadsCleanly(join(schemaExamples, f));
  });
}

// Examples that are programs driving a daemon, not projects to deploy (their own tests run them).
const PROGRAM_EXAMPLES = new Set(['subscribe-events']);
// Example projects other parts add under examples/<project>/: each must have a configuration file that validates.
const exampleProjects = existsSync(join(repo, 'examples'))
  ? readdirSync(join(repo, 'examples'))
      .filter((d) => statSync(join(repo, 'examples', d)).isDirectory() && !PROGRAM_EXAMPLES.has(d))
      .sort()
  : [];
for (const d of exampleProjects) {
  test(`examples/${d} has a myelin.yaml or cortex.yaml that validates`, async () => {
    const configs = ['myelin.yaml', 'cortex.yaml'].map((n) => join(repo, 'examples', d, n)).filter((p) => existsSync(p));
    assert.ok(configs.length > 0, `examples/${d} has neither myelin.yaml nor cortex.yaml`);
    for (const c of configs) await loadsCleanly(c);
  });
}

test('the JSON Schemas use the same quantity patterns as the parsers', () => {
  const d = realtimeSchema.definitions;
  assert.equal(d.duration.pattern, DURATION_PATTERN);
  assert.equal(d.cpu.pattern, CPU_PATTERN);
  assert.equal(d.memory.pattern, MEMORY_PATTERN);
  assert.equal(d.memoryOrNull.pattern, MEMORY_PATTERN);
  assert.equal(d.intOrPercent.pattern, INT_OR_PERCENT_PATTERN);
  assert.equal(legacySchema.definitions.cpu.pattern, CPU_PATTERN);
  assert.equal(legacySchema.definitions.memoryOrNull.pattern, MEMORY_PATTERN);
});

test('the defaults the schemas document are the defaults the loader applies', () => {
  const a = realtimeSchema.definitions.autoscaling.properties;
  const p = realtimeSchema.definitions.predictor.properties;
  const n = realtimeSchema.definitions.networking.properties;
  const c = realtimeSchema.definitions.compute.properties;
  const u = realtimeSchema.definitions.updateStrategy.properties;
  const ms = (v: string): number => {
    const r = parseDuration(v);
    assert.ok(r.ok);
    return r.value;
  };
  const cases: [string, unknown, unknown][] = [
    ['min_replicas', a.min_replicas.default, DEFAULTS.minReplicas],
    ['max_replicas', a.max_replicas.default, DEFAULTS.maxReplicas],
    ['max_replica_concurrency', a.max_replica_concurrency.default, DEFAULTS.maxReplicaConcurrency],
    ['window', ms(a.window.default), DEFAULTS.windowMs],
    ['downscale_stabilization_period', ms(a.downscale_stabilization_period.default), DEFAULTS.downscaleStabilizationPeriodMs],
    ['upscale_stabilization_period', ms(a.upscale_stabilization_period.default), DEFAULTS.upscaleStabilizationPeriodMs],
    ['max_downscale_factor', a.max_downscale_factor.default, DEFAULTS.maxDownscaleFactor],
    ['max_upscale_factor', a.max_upscale_factor.default, DEFAULTS.maxUpscaleFactor],
    ['downscale_tolerance', a.downscale_tolerance.default, DEFAULTS.downscaleTolerance],
    ['upscale_tolerance', a.upscale_tolerance.default, DEFAULTS.upscaleTolerance],
    ['panic_threshold', a.panic_threshold.default, DEFAULTS.panicThreshold],
    ['policy', a.policy.default, 'cortex'],
    ['processes_per_replica', p.processes_per_replica.default, DEFAULTS.processesPerReplica],
    ['threads_per_process', p.threads_per_process.default, DEFAULTS.threadsPerProcess],
    ['timeout', ms(p.timeout.default), DEFAULTS.timeoutMs],
    ['local_port', n.local_port.default, DEFAULTS.localPort],
    ['max_body_size', (parseMemory(n.max_body_size.default) as { value: number }).value, DEFAULTS.maxBodyBytes],
    ['cpu', c.cpu.default, `${DEFAULTS.cpuMillis}m`],
    ['max_surge', u.max_surge.default, `${DEFAULTS.maxSurge.value}%`],
    ['max_unavailable', u.max_unavailable.default, `${DEFAULTS.maxUnavailable.value}%`],
    ['legacy target_cpu_utilization', legacySchema.definitions.compute.properties.target_cpu_utilization.default, DEFAULTS.targetCpuUtilization],
  ];
  for (const [name, got, want] of cases) assert.deepEqual(got, want, name);
  assert.equal(formatDuration(DEFAULTS.tickMs.cortex), '10s');
  assert.equal(formatDuration(DEFAULTS.tickMs.burst), '2s');
});

test('the whole-file schemas reject what the loader rejects at the shape level', () => {
  const realtime = fileValidator('realtime');
  const legacy = fileValidator('legacy');
  const cases: { name: string; v: typeof realtime; data: unknown; want: boolean }[] = [
    { name: 'a map is not a file', v: realtime, data: { name: 'a' }, want: false },
    { name: 'minimal realtime', v: realtime, data: [{ name: 'a', kind: 'RealtimeAPI', predictor: { type: 'python', path: 'p.py' } }], want: true },
    { name: 'python without path', v: realtime, data: [{ name: 'a', kind: 'RealtimeAPI', predictor: { type: 'python' } }], want: false },
    { name: 'onnx without path', v: realtime, data: [{ name: 'a', kind: 'RealtimeAPI', predictor: { type: 'onnx', model_path: 'm.onnx' } }], want: true },
    { name: 'unknown key', v: realtime, data: [{ name: 'a', kind: 'RealtimeAPI', predictor: { type: 'onnx' }, extra: 1 }], want: false },
    { name: 'legacy minimal', v: legacy, data: [{ name: 'a', kind: 'api', model: 's3://b/m.onnx' }], want: true },
    { name: 'legacy deployment item', v: legacy, data: [{ name: 'd', kind: 'deployment' }, { name: 'a', kind: 'api', model: 'm' }], want: true },
    { name: 'legacy bad format', v: legacy, data: [{ name: 'a', kind: 'api', model: 'm', model_format: 'pytorch' }], want: false },
  ];
  for (const c of cases) assert.equal(c.v(c.data), c.want, c.name);
});
