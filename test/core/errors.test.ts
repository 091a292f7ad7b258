import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, EngineError, errors, formatConfigProblem, HttpError } from '../../core/errors.js';

test('formatConfigProblem puts file, position, api and field in front of the message', () => {
  const cases = [
    {
      name: 'full',
      p: { file: 'cortex.yaml', line: 14, col: 7, api: 'iris', field: 'autoscaling.min_replicas', message: 'x', severity: 'error' as const },
      want: 'cortex.yaml:14:7: iris: autoscaling.min_replicas: x',
    },
    { name: 'file level', p: { file: 'a.yaml', line: 1, col: 1, message: 'empty', severity: 'error' as const }, want: 'a.yaml:1:1: empty' },
    {
      name: 'warning',
      p: { file: 'a.yaml', line: 2, col: 3, api: 'a', field: 'image', message: 'ignored', severity: 'warning' as const },
      want: 'a.yaml:2:3: a: image: warning: ignored',
    },
  ];
  for (const c of cases) assert.equal(formatConfigProblem(c.p), c.want, c.name);
});

test('errors carry stable codes and names and are instanceof their category', () => {
  const e = new ConfigError([{ file: 'f', line: 1, col: 1, message: 'm', severity: 'error' }]);
  assert.equal(e.code, 'ENG_CONFIG_INVALID');
  assert.equal(e.name, 'ConfigError');
  assert.ok(e instanceof errors.EngineError);
  assert.equal(e.message, 'f:1:1: m');
  const h = new HttpError(404, 'no such model');
  assert.equal(h.status, 404);
  assert.ok(h instanceof EngineError);
  assert.throws(() => new HttpError(99, 'bad'), RangeError);
  const cause = new Error('inner');
  assert.equal(new errors.TransportError('publish failed', { cause }).cause, cause);
});

test('HttpError is recognized by brand across module copies', () => {
  const foreign = Object.assign(new Error('teapot'), { [Symbol.for('myelin.HttpError')]: true, status: 418 });
  assert.ok(foreign instanceof HttpError, 'an HttpError from another copy of the module');
  assert.ok(!(new Error('x') instanceof HttpError));
  assert.ok(!((null as unknown as object) instanceof HttpError));
  assert.ok(new HttpError(400, 'x') instanceof HttpError);
});
