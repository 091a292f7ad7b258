import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bundleId, packProject, unpackProject } from '../../../serving/daemon/project-bundle.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-bundle-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('packProject skips dot-files and node_modules; unpack reproduces the files under a content id', async () => {
  const proj = join(dir, 'proj');
  await mkdir(join(proj, 'src'), { recursive: true });
  await mkdir(join(proj, 'node_modules/x'), { recursive: true });
  await mkdir(join(proj, '.git'), { recursive: true });
  await writeFile(join(proj, 'myelin.yaml'), '- name: a\n');
  await writeFile(join(proj, 'src/predictor.ts'), 'export class Predictor {}\n');
  await writeFile(join(proj, 'model.bin'), Buffer.from([0, 1, 2, 255]));
  await writeFile(join(proj, '.env'), 'SECRET=1');
  await writeFile(join(proj, 'node_modules/x/index.js'), '');
  await writeFile(join(proj, '.git/HEAD'), '');
  const b = await packProject(proj, 'myelin.yaml');
  assert.deepEqual(b.files.map((f) => f.path).sort(), ['model.bin', 'myelin.yaml', 'src/predictor.ts']);
  const out = await unpackProject(join(dir, 'store'), b);
  assert.ok(out.endsWith(bundleId(b)));
  assert.deepEqual([...(await readFile(join(out, 'model.bin')))], [0, 1, 2, 255]);
  assert.equal(await unpackProject(join(dir, 'store'), b), out, 'same content, same folder');
  const reordered = { ...b, files: [...b.files].reverse() };
  assert.equal(bundleId(reordered), bundleId(b));
});

test('unpackProject refuses paths that escape the folder', async () => {
  const cases = ['../evil', '/etc/passwd', 'a/../../b', 'a//b', 'a\\b'];
  for (const p of cases) {
    await assert.rejects(
      unpackProject(join(dir, 'store2'), { configFile: 'myelin.yaml', files: [{ path: p, data: '' }] }),
      /unsafe file path/,
      p,
    );
  }
});
