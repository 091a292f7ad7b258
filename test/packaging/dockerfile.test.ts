/**
 * The Dockerfile cannot be built here (no Docker engine), so this checks that everything it names
 * exists: the tarball `npm pack` writes, the package's bin, the CLI commands and flags it runs, the
 * environment variables it sets (read by the code), the ports and the project folder the Kubernetes
 * manifests use, Python with numpy for the bridge, and the files the build context lets in.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_REPLICA_COMMAND } from '../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-options.js';
import { REPLICA_PORT } from '../../adapters/orchestrators/kubernetes/kubernetes-manifests.js';
import { PYTHON_ENV } from '../../core/predictor/python-predictor.js';
import { buildCli } from '../../serving/cli/cli.js';
import { DEFAULT_CONTROL_URL } from '../../serving/cli/daemon-client.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string>; files: string[]; engines: { node: string } };

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) || (cur === '' && line.trim() === '')) continue;
    cur += line.replace(/\\\s*$/, ' ');
    if (/\\\s*$/.test(line)) continue;
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(cur.trim());
    assert.ok(m, `not an instruction: ${cur}`);
    out.push({ op: m[1], args: m[2].trim() });
    cur = '';
  }
  return out;
}

const docker = instructions(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
const one = (op: string): string => {
  const found = docker.filter((i) => i.op === op);
  assert.equal(found.length, 1, `one ${op}`);
  return found[0].args;
};
const env = new Map(
  docker
    .filter((i) => i.op === 'ENV')
    .flatMap((i) => i.args.split(/\s+/))
    .map((kv) => kv.split('=') as [string, string]),
);

/** Every flag of `argv` is an option of the CLI command `argv[0]`. */
function assertCliAccepts(argv: readonly string[]): void {
  const cli = buildCli();
  const cmd = cli.commands.find((c: Command) => c.name() === argv[0]);
  assert.ok(cmd, `myelin ${argv[0]} is a command`);
  for (const a of argv.slice(1).filter((x) => x.startsWith('--'))) {
    assert.ok(cmd.options.some((o) => o.long === a), `myelin ${argv[0]} has ${a}`);
  }
}

test('the base image is Node of the major the package needs, with Python and numpy for the bridge', () => {
  const from = one('FROM');
  const major = Number(/^node:(\d+)/.exec(from)?.[1]);
  assert.ok(major >= Number(/\d+/.exec(pkg.engines.node)![0]), from);
  const run = docker.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ');
  assert.match(run, /apt-get install[^&]*\bpython3\b[^&]*\bpython3-numpy\b/);
  assert.match(readFileSync(join(repo, 'plugins/predictor-python/bridge/myelin_bridge.py'), 'utf8'), /import numpy/);
  assert.equal(env.get(PYTHON_ENV), '/usr/bin/python3', 'the interpreter the Debian package installs');
});

test('it installs the tarball npm pack writes, and runs the package bin', () => {
  const copy = one('COPY').split(/\s+/);
  const glob = new RegExp(`^${copy[0].replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
  assert.match(`${pkg.name}-${pkg.version}.tgz`, glob);
  const run = docker.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ');
  assert.match(run, /npm install -g [^&]*\/tmp\/myelin-\*\.tgz/);
  assert.ok(pkg.files.includes('Dockerfile'), 'the Dockerfile ships in the package');
  const entry = JSON.parse(one('ENTRYPOINT')) as string[];
  assert.deepEqual(entry, [Object.keys(pkg.bin)[0]]);
  // The context lets in exactly what the build copies.
  const ignore = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(ignore, ['*', '!Dockerfile', '!myelin-*.tgz']);
});

test('the commands it runs exist: the daemon in-cluster, replicas, fetch-project', () => {
  const cmd = JSON.parse(one('CMD')) as string[];
  assertCliAccepts(cmd);
  assert.deepEqual(cmd.slice(0, 3), ['up', '--target', 'kubernetes']);
  // The command the kubernetes target gives API pods (after the entrypoint, which it replaces).
  assert.equal(DEFAULT_REPLICA_COMMAND[0], Object.keys(pkg.bin)[0]);
  assertCliAccepts(DEFAULT_REPLICA_COMMAND.slice(1));
  assertCliAccepts(['fetch-project', '--dest']);
});

test('its environment is what the code reads, and its ports and folder are the manifests\'', () => {
  const sources = ['serving/cli/bin.ts', 'serving/replica/replica-entry.ts'].map((f) => readFileSync(join(repo, f), 'utf8')).join('\n');
  for (const name of ['ONNXRUNTIME_NODE_INSTALL', 'ORT_DISABLE_TELEMETRY']) {
    assert.ok(env.has(name), name);
    assert.ok(sources.includes(`process.env.${name}`), `${name} is read`);
  }
  const ports = one('EXPOSE').split(/\s+/).map(Number).sort();
  assert.deepEqual(ports, [REPLICA_PORT, Number(new URL(DEFAULT_CONTROL_URL).port)].sort());
  assert.equal(one('WORKDIR'), '/project');
  assert.ok(readFileSync(join(repo, 'adapters/orchestrators/kubernetes/kubernetes-manifests.ts'), 'utf8').includes("'/project'"), 'the pods mount the project at /project');
});
