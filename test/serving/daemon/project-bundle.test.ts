import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BundleError, bundleId, packProject, unpackProject } from '../../../serving/daemon/project-bundle.js';

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

test('a bundle the file system cannot hold is refused as ENG_BAD_BUNDLE naming the entry, and nothing is left behind', async () => {
  const b64 = Buffer.from('x').toString('base64');
  const config = { path: 'myelin.yaml', data: b64 };
  const long = 'n'.repeat(300);
  const cases: { name: string; paths: string[]; want: RegExp }[] = [
    { name: 'file and folder (file first)', paths: ['a', 'a/b'], want: /a file and a folder with the same name: "a" \(a file\) and "a\/b"/ },
    { name: 'file and folder (folder first)', paths: ['d/e/f', 'd/e'], want: /a file and a folder with the same name: "d\/e" \(a file\) and "d\/e\/f"/ },
    { name: 'the same path twice', paths: ['twice', 'twice'], want: /lists the file "twice" twice/ },
    { name: 'a 300-character name', paths: [`src/${long}`], want: new RegExp(`name too long in project: "${long}" in "src/${long}" is 300 bytes \\(at most 255\\)`) },
    { name: 'a 255-byte name in 2-byte characters', paths: ['é'.repeat(128)], want: /name too long in project: .* is 256 bytes/ },
    { name: 'a path over 3072 bytes', paths: [Array.from({ length: 16 }, () => 'p'.repeat(200)).join('/')], want: /path too long in project: .* is 3215 bytes \(at most 3072\)/ },
  ];
  const root = join(dir, 'store-bad');
  for (const c of cases) {
    await assert.rejects(
      unpackProject(root, { configFile: 'myelin.yaml', files: [config, ...c.paths.map((path) => ({ path, data: b64 }))] }),
      (e: unknown) => e instanceof BundleError && e.code === 'ENG_BAD_BUNDLE' && c.want.test(e.message),
      c.name,
    );
  }
  await assert.rejects(readdir(root), { code: 'ENOENT' }, 'refused before anything is written');
  // 255 bytes is still a name.
  const ok = await unpackProject(root, { configFile: 'myelin.yaml', files: [config, { path: 'm'.repeat(255), data: b64 }] });
  assert.equal(await readFile(join(ok, 'm'.repeat(255)), 'utf8'), 'x');
});

test('a file-system refusal checkBundle did not foresee is still ENG_BAD_BUNDLE, naming the file', async () => {
  // A store folder deep enough that a legal 3000-byte project path goes over the system's PATH_MAX (4096).
  const deep = join(dir, ...Array.from({ length: 6 }, () => 'q'.repeat(200)));
  await mkdir(deep, { recursive: true });
  const path = Array.from({ length: 15 }, (_, i) => `${i}`.padEnd(199, 'r')).join('/');
  const b64 = Buffer.from('x').toString('base64');
  await assert.rejects(
    unpackProject(deep, { configFile: 'myelin.yaml', files: [{ path: 'myelin.yaml', data: b64 }, { path, data: b64 }] }),
    (e: unknown) => e instanceof BundleError && e.message.startsWith(`cannot write ${JSON.stringify(path)} from the project: the name is too long for the file system (ENAMETOOLONG)`),
  );
  assert.deepEqual(await readdir(deep), [], 'the partial folder is removed');
});
