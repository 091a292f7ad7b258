import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpError, PredictorError } from '../../../core/errors.js';
import { ModelCatalog } from '../../../core/predictor/model-catalog.js';

const v = (version: string) => ({ version, model: `m${version}` });

describe('ModelCatalog.select', () => {
  const one = new ModelCatalog([{ name: '_cortex_default', versions: [v('1'), v('2')] }]);
  const many = new ModelCatalog([
    { name: 'iris', versions: [v('1'), v('3')] },
    { name: 'add', versions: [v('1')] },
  ]);
  const cases: { name: string; catalog: ModelCatalog<string>; args: [string?, (string | number)?]; want: [string, string] }[] = [
    { name: 'one model: no name, latest', catalog: one, args: [], want: ['_cortex_default', '2'] },
    { name: 'one model: a name is ignored', catalog: one, args: ['whatever'], want: ['_cortex_default', '2'] },
    { name: 'one model: version as a number', catalog: one, args: [undefined, 1], want: ['_cortex_default', '1'] },
    { name: 'named, latest', catalog: many, args: ['iris', 'latest'], want: ['iris', '3'] },
    { name: 'named, version string', catalog: many, args: ['iris', '1'], want: ['iris', '1'] },
    { name: 'named, version with leading zeros', catalog: many, args: ['iris', '003'], want: ['iris', '3'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = c.catalog.select(...c.args);
      assert.deepEqual([got.name, got.version, got.model], [...c.want, `m${c.want[1]}`]);
    });
  }

  const errors: { name: string; args: [string?, (string | number)?]; status: number; want: RegExp }[] = [
    { name: 'several models and no name', args: [], status: 400, want: /^model_name was not specified; .*choose one of: iris, add$/ },
    { name: 'unknown model', args: ['nope'], status: 404, want: /model "nope" is not served by this API \(models: iris, add\)/ },
    { name: 'unknown version', args: ['iris', 2], status: 404, want: /model "iris" has no version 2 \(versions: 1, 3\)/ },
    { name: 'malformed version', args: ['iris', 'v2'], status: 400, want: /non-negative integer or "latest"/ },
  ];
  for (const c of errors) {
    test(`${c.status}: ${c.name}`, () => {
      assert.throws(() => many.select(...c.args), (err: unknown) => err instanceof HttpError && err.status === c.status && c.want.test(err.message));
    });
  }

  test('duplicate names are refused', () => {
    assert.throws(() => new ModelCatalog([{ name: 'a', versions: [v('1')] }, { name: 'a', versions: [v('1')] }]), PredictorError);
  });
});
