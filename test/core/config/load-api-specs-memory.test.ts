import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { ConfigError, formatConfigProblem, PredictorError } from '../../../core/errors.js';
import type { FileKind, ProjectFileSystem } from '../../../core/ports/project-file-system.js';
import type { UserModuleImporter } from '../../../core/ports/user-module-importer.js';
import { importUserModule } from '../../../core/predictor/import-user-module.js';

/** An in-memory project: absolute path → content; folders are implied by the paths below them. */
function memoryFs(files: Readonly<Record<string, string | Uint8Array>>, codes: Readonly<Record<string, string>> = {}): ProjectFileSystem {
  const kind = (p: string): FileKind => (p in files ? 'file' : Object.keys(files).some((f) => f.startsWith(`${p}/`)) ? 'directory' : 'missing');
  return {
    kind,
    async readFile(p) {
      if (codes[p]) throw Object.assign(new Error(codes[p]), { code: codes[p] });
      const k = kind(p);
      if (k === 'missing') throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      if (k === 'directory') throw Object.assign(new Error('dir'), { code: 'EISDIR' });
      const c = files[p];
      return typeof c === 'string' ? new TextEncoder().encode(c) : c;
    },
  };
}

const ROOT = '/myelin-memory-project-does-not-exist';
const PY = '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n';

test('loadApiSpecsFromFile runs on an in-memory ProjectFileSystem (read, BOM, path probes)', async () => {
  const fs = memoryFs({ [`${ROOT}/cortex.yaml`]: `\uFEFF${PY}`, [`${ROOT}/predictor.py`]: 'x' });
  const got = await loadApiSpecsFromFile('cortex.yaml', { files: fs, cwd: ROOT });
  assert.equal(got.specs[0].predictor.path, `${ROOT}/predictor.py`);
  const missing = memoryFs({ [`${ROOT}/cortex.yaml`]: PY });
  await assert.rejects(loadApiSpecsFromFile(`${ROOT}/cortex.yaml`, { files: missing }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.problems.map(formatConfigProblem).join('\n'), /predictor\.path: .*does not exist \(looked for \/myelin-memory-project-does-not-exist\/predictor\.py\)/);
    return true;
  });
});

test('loadApiSpecsFromFile: read failures from the port keep their messages', async () => {
  const fs = memoryFs({ [`${ROOT}/d/x`]: '', [`${ROOT}/bin.yaml`]: new Uint8Array([0xff, 0xfe, 0x80]) }, { [`${ROOT}/locked.yaml`]: 'EACCES', [`${ROOT}/io.yaml`]: 'EIO' });
  const cases = [
    { file: 'nope.yaml', want: 'nope.yaml:1:1: cannot read the configuration file (no such file)' },
    { file: 'd', want: 'd:1:1: cannot read the configuration file (it is a directory)' },
    { file: 'locked.yaml', want: 'locked.yaml:1:1: cannot read the configuration file (permission denied)' },
    { file: 'io.yaml', want: 'io.yaml:1:1: cannot read the configuration file (EIO)' },
    { file: 'bin.yaml', want: 'bin.yaml:1:1: this is not a text file (it is not valid UTF-8); expected a YAML list of APIs' },
  ];
  for (const c of cases) {
    await assert.rejects(loadApiSpecsFromFile(c.file, { files: fs, cwd: ROOT }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.deepEqual(err.problems.map(formatConfigProblem), [c.want], c.file);
      return true;
    });
  }
});

test('importUserModule runs on an in-memory UserModuleImporter', async () => {
  const asked: string[] = [];
  const importer: UserModuleImporter = {
    async exists(p) { asked.push(p); return p !== '/m/missing.ts'; },
    async import(p) { if (p === '/m/bad.ts') throw new Error('boom'); return { Predictor: 1 }; },
  };
  assert.deepEqual(await importUserModule(importer, '/m/ok.ts', 'a predictor'), { Predictor: 1 });
  await assert.rejects(importUserModule(importer, '/m/p.py', 'a predictor'), (e: unknown) => e instanceof PredictorError && /^\/m\/p\.py: a predictor must be one of \.ts/.test(e.message));
  assert.ok(!asked.includes('/m/p.py'), 'the extension is checked before the importer is asked');
  await assert.rejects(importUserModule(importer, '/m/missing.ts', 'a predictor'), /\/m\/missing.ts: file not found/);
  await assert.rejects(importUserModule(importer, '/m/bad.ts', 'a predictor'), (e: unknown) => e instanceof PredictorError && e.message === '/m/bad.ts: cannot load it: boom' && (e.cause as Error).message === 'boom');
});
