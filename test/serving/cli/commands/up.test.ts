import assert from 'node:assert/strict';
import { test } from 'node:test';
import { daemonPython } from '../../../../serving/cli/commands/up.js';

test('daemonPython: --python, else MYELIN_PYTHON, else python3 on PATH; paths made absolute', () => {
  const cases: ReadonlyArray<{ name: string; flag?: string; env: NodeJS.ProcessEnv; want: string }> = [
    { name: 'default', env: {}, want: 'python3' },
    { name: 'env', env: { MYELIN_PYTHON: '/usr/bin/python3' }, want: '/usr/bin/python3' },
    { name: 'empty env is unset', env: { MYELIN_PYTHON: '' }, want: 'python3' },
    { name: 'flag over env', flag: '/opt/py/bin/python', env: { MYELIN_PYTHON: '/usr/bin/python3' }, want: '/opt/py/bin/python' },
    { name: 'a bare name is looked up on PATH', flag: 'python3.11', env: {}, want: 'python3.11' },
    { name: 'a relative path is resolved against cwd', flag: 'venv/bin/python', env: {}, want: '/home/me/project/venv/bin/python' },
    { name: 'a relative env path too', env: { MYELIN_PYTHON: './py' }, want: '/home/me/project/py' },
  ];
  for (const c of cases) {
    const got = daemonPython(c.flag, c.env, '/home/me/project');
    assert.equal(got, c.want, `${c.name}: want ${c.want}, got ${got}`);
  }
});
