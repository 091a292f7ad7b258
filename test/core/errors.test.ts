import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, EngineError, errors, escapeControlChars, formatConfigProblem, HttpError } from '../../core/errors.js';

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

test('formatConfigProblem escapes control characters in every part, so one problem is one line and no escape sequence reaches the terminal', () => {
  const p = {
    file: 'dir\nforged.yaml:1:1: fake problem',
    line: 2,
    col: 3,
    api: 'a\u001b[31mred',
    field: 'predictor.path\r',
    message: 'predictor file "x\n\u001b]0;title\u0007\u009b2J\u202e.py" does not exist\tnow',
    severity: 'error' as const,
  };
  const line = formatConfigProblem(p);
  assert.equal(line, 'dir\\nforged.yaml:1:1: fake problem:2:3: a\\x1b[31mred: predictor.path\\r: predictor file "x\\n\\x1b]0;title\\x07\\x9b2J\\u202e.py" does not exist\\tnow');
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202e]/);
  assert.equal(escapeControlChars('plain ünïcode: ok'), 'plain ünïcode: ok');
  const e = new ConfigError([p, { ...p, severity: 'warning' }]);
  assert.equal(e.message.split('\n').length, 3, 'the heading and one line per problem');
});
