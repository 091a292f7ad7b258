import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HttpError, PredictorError } from '../../../core/errors.js';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import { importUserModule } from '../../../core/predictor/import-user-module.js';

test('a TypeScript predictor in a folder with no package.json loads, and its HttpError is recognized', async () => {
  // Cortex users' projects have no package.json: a plain import() of their .ts file fails there.
  const dir = await mkdtemp(join(tmpdir(), 'myelin-user-module-'));
  try {
    const file = join(dir, 'predictor.ts');
    await writeFile(
      file,
      "import { HttpError } from 'myelin';\nimport type { PredictArgs } from 'myelin';\n" +
        'export class Predictor { predict({ payload }: PredictArgs): number { if (payload === null) throw new HttpError(418, "teapot"); return 1; } }\n',
    );
    const mod = await importUserModule(new TsxUserModuleImporter(), file, 'a predictor');
    const Cls = mod.Predictor as new () => { predict(a: { payload: unknown }): number };
    assert.equal(new Cls().predict({ payload: 1 }), 1);
    assert.throws(() => new Cls().predict({ payload: null }), (e: unknown) => e instanceof HttpError && e.status === 418);

    const cases = [
      { name: 'wrong extension', path: join(dir, 'p.py'), want: /p.py: a predictor must be one of .ts/ },
      { name: 'missing', path: join(dir, 'nope.ts'), want: /nope.ts: file not found/ },
    ];
    for (const c of cases) {
      await assert.rejects(importUserModule(new TsxUserModuleImporter(), c.path, 'a predictor'), (e: unknown) => e instanceof PredictorError && c.want.test(e.message), c.name);
    }
    await writeFile(join(dir, 'bad.ts'), 'export class {');
    await assert.rejects(importUserModule(new TsxUserModuleImporter(), join(dir, 'bad.ts'), 'a predictor'), /bad.ts: cannot load it/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
