import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { firstContentPosition, preparePython } from '../../../serving/daemon/python-dependencies.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-pydeps-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('firstContentPosition: the first line that is not blank nor a comment, at its first column', async () => {
  const cases: ReadonlyArray<{ name: string; text: string; want: { line: number; col: number } }> = [
    { name: 'a package on the first line', text: 'numpy==1.26\n', want: { line: 1, col: 1 } },
    { name: 'after comments and blank lines', text: '# pinned for the model\n\n   \nnumpy\n', want: { line: 4, col: 1 } },
    { name: 'indented, CRLF', text: '# x\r\n\r\n  pandas\r\n', want: { line: 3, col: 3 } },
    { name: 'a shell script after its shebang', text: '#!/bin/bash\nset -e\napt-get install -y libgl1\n', want: { line: 2, col: 1 } },
    { name: 'a byte order mark is not a column', text: '\uFEFFscipy\n', want: { line: 1, col: 1 } },
    { name: 'empty: the file as a whole', text: '', want: { line: 1, col: 1 } },
    { name: 'comments only: the file as a whole', text: '# nothing yet\n#\n', want: { line: 1, col: 1 } },
  ];
  for (const [i, c] of cases.entries()) {
    const file = join(dir, `case-${i}.txt`);
    await writeFile(file, c.text);
    const got = await firstContentPosition(file);
    assert.deepEqual(got, c.want, `${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
  }
  assert.deepEqual(await firstContentPosition(join(dir, 'missing.txt')), { line: 1, col: 1 }, 'an unreadable file');
});

test('preparePython: each dependency-file warning points at the file\'s first package or command', async () => {
  const project = await mkdtemp(join(dir, 'project-'));
  await writeFile(join(project, 'requirements.txt'), '# for the predictor\n\nnumpy\n');
  await writeFile(join(project, 'dependencies.sh'), '#!/bin/sh\n  apt-get install -y libgomp1\n');
  await writeFile(join(project, 'conda-packages.txt'), 'conda-forge::rdkit\n');
  const spec = { name: 'py', predictor: { type: 'python', path: 'predictor.py', env: {} } } as unknown as ApiSpec;
  // No env cache: replicas run elsewhere (--target kubernetes), whose pods install requirements.txt
  // themselves (fetch-project --python-env), so it is neither installed here nor warned about.
  const got = await preparePython({ specs: [spec], projectDir: project });
  assert.deepEqual(
    got.warnings.map((w) => [w.file, w.line, w.col, w.severity]),
    [
      ['dependencies.sh', 2, 3, 'warning'],
      ['conda-packages.txt', 1, 1, 'warning'],
    ],
  );
  assert.deepEqual(got.specs, [spec], 'nothing installed, specs unchanged');
});
