// Where deploy-time problems point in the config file (FieldLocator, and the model problems that use
// it): the field's line when it is written, the API's entry when it is not, the top of the list of
// APIs when the API is not in the text, and line 1 col 1 only when there is no text to look in.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import type { DataPath } from '../../../core/config/yaml-source.js';
import { ConfigError } from '../../../core/errors.js';
import { discoverApiModels, FieldLocator } from '../../../serving/daemon/model-preparation.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

// Line numbers are 1-based; the APIs start on line 3.
const YAML = `# two APIs; the second one is looked at
# (comments first, so no API is on line 1)
- name: first
  kind: RealtimeAPI
  predictor:
    type: onnx
    model_path: first.onnx
- name: second
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      path: model/
  networking:
    endpoint: /second
`;

describe('FieldLocator.of', () => {
  const cases: Array<{ name: string; text: string | undefined; api: string; path: DataPath; want: { line: number; col: number } }> = [
    { name: 'a written field: its key', text: YAML, api: 'second', path: ['networking', 'endpoint'], want: { line: 15, col: 5 } },
    { name: 'a nested written field', text: YAML, api: 'second', path: ['predictor', 'models', 'path'], want: { line: 13, col: 7 } },
    { name: 'the first API is found by name too', text: YAML, api: 'first', path: ['predictor', 'model_path'], want: { line: 7, col: 5 } },
    { name: 'a field not written below a written section: that section', text: YAML, api: 'second', path: ['networking', 'local_port'], want: { line: 14, col: 3 } },
    { name: "a field not written at all: the API's `- name:` entry", text: YAML, api: 'first', path: ['networking', 'local_port'], want: { line: 3, col: 3 } },
    { name: 'an API not in the text: the top of the list of APIs', text: YAML, api: 'gone', path: ['networking', 'endpoint'], want: { line: 3, col: 1 } },
    { name: 'no text: the file itself (no finer position exists)', text: undefined, api: 'second', path: ['networking', 'endpoint'], want: { line: 1, col: 1 } },
    { name: 'text that does not parse: the file itself', text: '- name: [unclosed\n', api: 'second', path: ['name'], want: { line: 1, col: 1 } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = new FieldLocator(c.text).of(c.api, c.path);
      assert.deepEqual(got, c.want, `want ${c.want.line}:${c.want.col}, got ${got.line}:${got.col}`);
    });
  }
});

describe('model problems point at the model field of an API below line 1', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-config-positions-'));
    await writeFile(join(dir, 'first.onnx'), 'not read: the first API is fine as far as discovery goes');
    // A folder the onnx layout refuses (no *.onnx in it).
    await mkdir(join(dir, 'model'));
    await writeFile(join(dir, 'model', 'readme.txt'), 'no model here\n');
    await writeFile(join(dir, 'cortex.yaml'), YAML);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('discoverApiModels: the wrong layout of the second API is at its models.path line', async () => {
    const { specs } = await loadApiSpecsFromFile(join(dir, 'cortex.yaml'), { files: nodeProjectFileSystem });
    await assert.rejects(discoverApiModels({ specs, provider: storeModelProvider(), configFile: 'cortex.yaml', configText: YAML }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `want ConfigError, got ${String(err)}`);
      const got = err.problems.map((p) => [p.api, p.field, p.line, p.col]);
      assert.deepEqual(got, [['second', 'predictor.models.path', 13, 7]]);
      return true;
    });
  });
});
