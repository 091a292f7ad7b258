import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import { HttpError, PredictorError } from '../../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import { JavascriptPredictorBackend } from '../../../plugins/predictor-javascript/javascript-predictor-backend.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'myelin-js-models-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');

function version(model: string, v: string, weight: number): void {
  mkdirSync(join(dir, 'models', model, v), { recursive: true });
  writeFileSync(join(dir, 'models', model, v, 'weights.json'), JSON.stringify({ weight }));
}
version('double', '1', 2);
version('double', '2', 20);
version('triple', '1', 3);

// A TypeScript predictor in the style of Cortex's PythonPredictor with python_client.
const predictorFile = join(dir, 'predictor.ts');
writeFileSync(
  predictorFile,
  `import { readFile } from 'node:fs/promises';
export class Predictor {
  constructor({ modelClient, config }) { this.client = modelClient; this.loads = []; this.unloads = 0; this.config = config; }
  async init() { if (this.config.warm) this.warm = await this.client.getModel('double', '1'); }
  async loadModel(path) {
    this.loads.push(path);
    const { weight } = JSON.parse(await readFile(path + '/weights.json', 'utf8'));
    return { weight, times: (x) => x * weight };
  }
  unloadModel() { this.unloads++; }
  async predict({ payload, query }) {
    const model = await this.client.getModel(query.model, query.version);
    if (payload.hold) await new Promise((r) => setTimeout(r, payload.hold));
    return { y: model.times(payload.x), loads: this.loads.length, unloads: this.unloads, models: this.client.listModels() };
  }
}
`,
);

const backend = new JavascriptPredictorBackend(new TsxUserModuleImporter(), storeModelProvider({ log }));
const args = (payload: unknown, query: Record<string, string> = {}): BackendPredictArgs => ({ payload, query, headers: {}, requestId: 'r', debug: false, log });
const load = (o: ApiSpecOverrides['predictor'] = {}): Promise<LoadedPredictor> =>
  backend.load(apiSpecFixture({ projectDir: dir, predictor: { type: 'javascript', path: predictorFile, models: { dir: join(dir, 'models') }, ...o } }), log);

describe('TypeScript predictor with models', () => {
  test('getModel(name, version) returns loadModel of that version; every version loads at start', async () => {
    const p = await load();
    const out = (await p.predict(args({ x: 5 }, { model: 'double' }))) as { y: number; loads: number; models: unknown };
    assert.deepEqual([out.y, out.loads], [100, 3]);
    assert.equal(((await p.predict(args({ x: 5 }, { model: 'double', version: '1' }))) as { y: number }).y, 10);
    assert.equal(((await p.predict(args({ x: 5 }, { model: 'triple' }))) as { y: number }).y, 15);
    assert.deepEqual(out.models, [
      { name: 'double', versions: ['1', '2'] },
      { name: 'triple', versions: ['1'] },
    ]);
    await assert.rejects(p.predict(args({ x: 1 }, { model: 'square' })), (e: unknown) => e instanceof HttpError && e.status === 404 && /models: double, triple/.test(e.message));
    await assert.rejects(p.predict(args({ x: 1 }, {})), (e: unknown) => e instanceof HttpError && e.status === 400 && /model_name was not specified/.test(e.message));
    const described = p.describe() as { models: Array<{ name: string; status: Record<string, string> }> };
    assert.deepEqual(described.models.map((m) => [m.name, m.status]), [
      ['double', { 1: 'loaded', 2: 'loaded' }],
      ['triple', { 1: 'loaded' }],
    ]);
    await p.close();
  });

  test('cache_size 1: loads on demand, evicts the least recently used, never a model a running prediction holds', async () => {
    const p = await load({ models: { dir: join(dir, 'models'), cacheSize: 1, diskCacheSize: 3 } });
    const first = (await p.predict(args({ x: 1 }, { model: 'triple' }))) as { loads: number };
    assert.equal(first.loads, 1);
    // A slow prediction holds "double" while another request needs "triple".
    const slow = p.predict(args({ x: 2, hold: 200 }, { model: 'double' }));
    const other = (await p.predict(args({ x: 2 }, { model: 'triple' }))) as { y: number };
    assert.equal(other.y, 6);
    assert.equal(((await slow) as { y: number }).y, 40);
    const stats = p.modelStats!();
    assert.ok(stats.evictions >= 1, `evictions ${stats.evictions}`);
    assert.ok(stats.misses >= 2 && stats.loads >= 2);
    assert.ok(stats.inMemory <= 2);
    await p.close();
  });

  test('init() may call getModel; a class without loadModel is refused at load, naming the file', async () => {
    const warm = await load({ config: { warm: true } });
    await warm.close();
    const bare = join(dir, 'bare.ts');
    writeFileSync(bare, 'export class Predictor { predict() { return 1; } }\n');
    await assert.rejects(
      backend.load(apiSpecFixture({ projectDir: dir, predictor: { type: 'javascript', path: bare, models: { dir: join(dir, 'models') } } }), log),
      (e: unknown) => e instanceof PredictorError && e.message.includes('bare.ts') && /needs a loadModel\(path\) method/.test(e.message),
    );
  });
});
