import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { fsModule } from '../../../adapters/fs/fs-module.js';
import { PredictorRegistry } from '../../../core/contribution/predictor-registry.js';
import { PredictorError, UnknownKindError } from '../../../core/errors.js';
import type { BackendPredictArgs } from '../../../core/ports/predictor-backend.js';
import { predictorJavascriptModule } from '../../../plugins/predictor-javascript/predictor-javascript-module.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'myelin-js-backend-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// `.js` here is ESM (type=module); CommonJS is covered by a `.cjs` file.
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function registry(): PredictorRegistry {
  const c = new Container();
  c.load(predictorJavascriptModule, fsModule);
  c.bind(PredictorRegistry).toSelf().inSingletonScope();
  return c.get(PredictorRegistry);
}

function capture(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (out.push(String(c)), cb()) }));
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function args(log: pino.Logger, payload: unknown, debug = false): BackendPredictArgs {
  return { payload, query: { q: 'x' }, headers: { 'x-h': 'v' }, requestId: 'r1', debug, log: log.child({ requestId: 'r1' }) };
}

test('registry resolves javascript and its typescript alias, and lists kinds for unknown ones', () => {
  const r = registry();
  assert.equal(r.get('javascript').kind, 'javascript');
  assert.equal(r.get('typescript'), r.get('javascript'));
  assert.throws(() => r.get('onnx-nope'), (e: unknown) => e instanceof UnknownKindError && /"javascript", "typescript"/.test(e.message));
});

const good = [
  {
    name: 'named export in .ts with types',
    file: 'named.ts',
    text: `export class Predictor { constructor(private ctx: { config: Record<string, unknown> }) {}
      predict({ payload, query, headers }: { payload: unknown; query: Record<string, unknown>; headers: Record<string, unknown> }): unknown {
        return { got: payload, q: query.q, h: headers['x-h'], greeting: this.ctx.config.greeting }; } }`,
    want: { got: { a: 1 }, q: 'x', h: 'v', greeting: 'hi' },
  },
  {
    name: 'default export in .mjs, async predict',
    file: 'default.mjs',
    text: `export default class Thing { constructor({ config }) { this.c = config } async predict({ payload }) { return [this.c.greeting, payload.a] } }`,
    want: ['hi', 1],
  },
  {
    name: 'ESM .js with init()',
    file: 'init.js',
    text: `export class Predictor { async init() { await new Promise((r) => setTimeout(r, 1)); this.ready = 'yes' } predict() { return this.ready } }`,
    want: 'yes',
  },
  {
    name: 'CommonJS .cjs module.exports',
    file: 'common.cjs',
    text: `class Predictor { predict({ payload }) { return payload.a + 1 } } module.exports = { Predictor };`,
    want: 2,
  },
];
for (const c of good) {
  test(`loads and predicts: ${c.name}`, async () => {
    const { log } = capture();
    const spec = apiSpecFixture({ predictor: { path: file(c.file, c.text), config: { greeting: 'hi' } } });
    const p = await registry().get('javascript').load(spec, log);
    const got = await p.predict(args(log, { a: 1 }));
    assert.deepEqual(got, c.want);
    assert.equal(p.describe().backend, 'javascript');
    await p.close();
  });
}

const bad = [
  { name: 'missing file', path: () => join(dir, 'nope.ts'), want: /nope.ts: file not found/ },
  { name: 'wrong extension', path: () => file('model.py', 'x'), want: /must be one of \.ts/ },
  { name: 'no Predictor export', path: () => file('none.mjs', 'export const x = 1;'), want: /expected an exported class named Predictor.*found exports: x/ },
  { name: 'class without predict', path: () => file('nopredict.mjs', 'export class Predictor {}'), want: /missing a predict/ },
  { name: 'constructor throws', path: () => file('throws.mjs', `export class Predictor { constructor() { throw new Error('boom') } predict() {} }`), want: /constructor failed: boom/ },
  { name: 'init rejects', path: () => file('initfail.mjs', `export class Predictor { async init() { throw new Error('no model') } predict() {} }`), want: /constructor failed: no model/ },
  { name: 'syntax error', path: () => file('syntax.mjs', 'export class Predictor {'), want: /syntax.mjs: cannot load it: / },
];
for (const c of bad) {
  test(`rejects with a PredictorError naming the file: ${c.name}`, async () => {
    const { log } = capture();
    const path = c.path();
    await assert.rejects(registry().get('typescript').load(apiSpecFixture({ predictor: { path } }), log), (e: unknown) => {
      assert.ok(e instanceof PredictorError, `want PredictorError, got ${String(e)}`);
      assert.equal(e.code, 'ENG_PREDICTOR_LOAD');
      assert.match(e.message, c.want);
      assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
      return true;
    });
  });
}

test('config is deep-copied per instance', async () => {
  const { log } = capture();
  const path = file('mutate.mjs', `export class Predictor { constructor({ config }) { this.c = config } predict() { this.c.nested.n += 1; return this.c.nested.n } }`);
  const spec = apiSpecFixture({ predictor: { path, config: { nested: { n: 0 } } } });
  const a = await registry().get('javascript').load(spec, log);
  const b = await registry().get('javascript').load(spec, log);
  assert.equal(await a.predict(args(log, null)), 1);
  assert.equal(await a.predict(args(log, null)), 2);
  assert.equal(await b.predict(args(log, null)), 1);
  assert.deepEqual(spec.predictor.config, { nested: { n: 0 } });
});

test('postPredict receives the response and close() reaches the instance', async () => {
  const { log, lines } = capture();
  const path = file(
    'post.mjs',
    `export class Predictor { constructor({ log }) { this.log = log } predict({ payload }) { return payload * 2 }
     postPredict({ payload, response }) { this.log.info({ payload, response }, 'post') } close() { this.log.info('closed') } }`,
  );
  const p = await registry().get('javascript').load(apiSpecFixture({ predictor: { path } }), log);
  assert.ok(p.postPredict);
  await p.postPredict!({ ...args(log, 3), response: 6 });
  await p.close();
  const got = lines().map((l) => [l.msg, l.payload, l.response, l.component]);
  assert.deepEqual(got, [
    ['post', 3, 6, 'predictor'],
    ['closed', undefined, undefined, 'predictor'],
  ]);
});

test('debug logs the inference stage under the request id', async () => {
  const { log, lines } = capture();
  const path = file('dbg.mjs', `export class Predictor { predict({ payload }) { return { label: payload.x > 1 ? 'big' : 'small', bytes: new Uint8Array(10) } } }`);
  const p = await registry().get('javascript').load(apiSpecFixture({ predictor: { path } }), log);
  await p.predict(args(log, { x: 2 }, false));
  assert.equal(lines().length, 0, 'nothing logged without debug');
  await p.predict(args(log, { x: 2 }, true));
  const l = lines();
  assert.equal(l.length, 1);
  assert.deepEqual([l[0].msg, l[0].requestId, l[0].stage, l[0].value], ['debug stage', 'r1', 'inference', { label: 'big', bytes: { bytes: 10 } }]);
});
