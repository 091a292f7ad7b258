// The dashboard as a user sees it: a real daemon (`node bin/myelin.mjs up`), the real iris-onnx API,
// Debian's chromium driven by playwright-core. One daemon for every scenario, bounded to about a minute.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { runCli, startDaemonProcess, type DaemonProcess } from '../../harness/daemon-process.js';

const CHROMIUM = process.env.MYELIN_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Screenshots for a person to look at (ignored by git). */
const SHOTS = join(ROOT, 'test-output', 'dashboard');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const skip = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (bash scripts/system-deps.sh installs it)`;
if (skip) console.log(`# skipped: ${skip}`);

// Short windows so a load step is answered in seconds (the example's own settings answer in minutes).
const YAML = `- name: iris
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: predictor.ts
    model_path: model/iris.onnx
    config:
      labels: [setosa, versicolor, virginica]
  monitoring:
    model_type: classification
    key: label
  compute:
    cpu: 100m
  autoscaling:
    min_replicas: 1
    max_replicas: 3
    target_replica_concurrency: 0.2
    tick: 1s
    window: 2s
    upscale_stabilization_period: 0s
    downscale_stabilization_period: 30s
`;

let dir: string;
let daemon: DaemonProcess;
let dashboard: string;
let context: BrowserContext;
let page: Page;

async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Closed-loop load on 127.0.0.1: `clients` loops POSTing the iris sample until stopped (bounded). */
function load(url: string, body: string, clients: number) {
  assert.match(url, /^http:\/\/127\.0\.0\.1:/);
  let stopped = false;
  let ok = 0;
  let failed = 0;
  const deadline = Date.now() + 60_000;
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped && Date.now() < deadline && ok + failed < 200_000) {
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status === 200) ok++;
        else failed++;
      } catch {
        failed++;
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'myelin-dashboard-'));
  const project = join(dir, 'project');
  await cp(join(ROOT, 'examples', 'iris-onnx'), project, { recursive: true });
  await writeFile(join(project, 'myelin.yaml'), YAML);
  const stateDir = join(dir, 'state');
  daemon = await startDaemonProcess({ stateDir, logFile: join(dir, 'daemon.log'), outFile: join(dir, 'daemon.out') });
  const banner = await readFile(join(dir, 'daemon.out'), 'utf8');
  dashboard = /dashboard: +(http:\/\/\S+)/.exec(banner)?.[1] ?? '';
  const deployed = await runCli(['deploy', join(project, 'myelin.yaml'), '--force', '-o', 'json', '--url', daemon.controlUrl, '--state-dir', stateDir], { cwd: project, timeoutMs: 90_000 });
  assert.equal(deployed.code, 0, `${deployed.stdout}\n${deployed.stderr}`);
  const userDataDir = join(dir, 'chromium-profile');
  await mkdir(userDataDir);
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  // Layout shifts (CLS entries) from the first paint on, read at the end.
  // (Code that runs in the page is written as strings: this file is type-checked without the DOM library.)
  await context.addInitScript(`window.shifts = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.shifts.push(e.value); })
      .observe({ type: 'layout-shift', buffered: true });`);
  page = context.pages()[0] ?? (await context.newPage());
  await mkdir(SHOTS, { recursive: true });
});

after(async () => {
  await context?.close();
  await daemon?.stop(30_000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the dashboard against a real daemon and the iris-onnx API', { skip, timeout: 150_000 }, async (t) => {
  await t.test('a page opened without the token is refused', async () => {
    assert.match(dashboard, /^http:\/\/127\.0\.0\.1:\d+\/\?token=/, 'myelin up prints the dashboard URL with its token');
    const res = await page.goto(`${daemon.controlUrl}/`);
    assert.equal(res?.status(), 401);
    assert.match(await page.locator('#refused').innerText(), /needs the daemon’s token/);
    const wrong = await page.goto(`${daemon.controlUrl}/?token=not-the-token`);
    assert.equal(wrong?.status(), 401);
    // Without a session the page's data routes answer 401 too, and no cookie was set.
    assert.equal(await page.evaluate(`fetch('/v1/apis').then((r) => r.status)`), 401);
    assert.deepEqual(await context.cookies(daemon.controlUrl), []);
    // A page of another origin is refused even with the bearer token (the control API checks Origin).
    const foreign = await fetch(`${daemon.controlUrl}/v1/apis`, { headers: { authorization: `Bearer ${daemon.token}`, origin: 'http://evil.example' } });
    assert.equal(foreign.status, 403);
  });

  await t.test('the token becomes an HttpOnly SameSite=Strict cookie and the API appears', async () => {
    const res = await page.goto(dashboard);
    assert.equal(res?.status(), 200);
    assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
    const [cookie] = await context.cookies(daemon.controlUrl);
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '', 'the page script cannot read the session');
    await page.locator('tr[data-api="iris"]').waitFor({ timeout: 30_000 });
    await waitFor('iris live on the page', 60_000, async () => (await page.locator('tr[data-api="iris"] td.status').innerText()) === 'live');
    assert.equal(await page.locator('#detail-h').innerText(), 'iris');
    await page.screenshot({ path: join(SHOTS, '1-live-1280.png'), fullPage: true });
  });

  let reason = '';
  await t.test('a load step makes a replica appear without a reload, and the decision shows its reason', async () => {
    await page.evaluate('window.loadedOnce = true');
    const detail = (await (await fetch(`${daemon.controlUrl}/v1/apis/iris`, { headers: { authorization: `Bearer ${daemon.token}` } })).json()) as { url: string };
    const sample = await readFile(join(ROOT, 'examples', 'iris-onnx', 'sample.json'), 'utf8');
    const l = load(detail.url, sample, 12);
    try {
      await waitFor('a second replica row on the page', 45_000, async () => (await page.locator('#replicas tbody tr').count()) >= 2);
      const cell = await page.locator('tr[data-api="iris"] td').nth(3).innerText();
      assert.match(cell, /^[23] \//, `requested replicas in the API row: ${cell}`);
    } finally {
      const r = await l.stop();
      assert.ok(r.ok > 0, 'requests were answered');
    }
    assert.equal(await page.evaluate('window.loadedOnce'), true, 'the page was not reloaded');
    const events = (await (await fetch(`${daemon.controlUrl}/v1/events?follow=false&api=iris&since=0`, { headers: { authorization: `Bearer ${daemon.token}` } })).json()) as { events: { type: string; to: number; from: number; reason: string }[] };
    const up = events.events.find((e) => e.type === 'scaling.decided' && e.to > e.from);
    assert.ok(up, 'the daemon decided a scale-up');
    reason = up.reason;
    const marker = page.locator('#chart .marker').first();
    await marker.waitFor({ timeout: 10_000 });
    await marker.hover();
    const tip = page.locator('#tooltip');
    await tip.waitFor({ state: 'visible', timeout: 5_000 });
    assert.ok((await tip.innerText()).includes(reason), `tooltip says the reason: ${await tip.innerText()} / ${reason}`);
    assert.ok((await page.locator('#decisions').innerText()).includes(reason));
    // Keyboard: the marker is a button; focusing it shows the same tooltip.
    await page.mouse.move(0, 0);
    await marker.focus();
    await tip.waitFor({ state: 'visible', timeout: 5_000 });
    await page.screenshot({ path: join(SHOTS, '2-scaled-decision-1280.png'), fullPage: true });
  });

  await t.test('a what-if run draws a second curve', async () => {
    // Pixels of the what-if series' colour (#9333ea) on the chart's canvas.
    const purple = () =>
      page.evaluate(`(() => {
        const c = document.querySelector('#chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0x93) < 24 && Math.abs(d[i + 1] - 0x33) < 24 && Math.abs(d[i + 2] - 0xea) < 24) n++;
        return n;
      })()`) as Promise<number>;
    assert.equal(await purple(), 0, 'no what-if curve before a run');
    await page.locator('#whatif input[name="target_replica_concurrency"]').fill('100');
    await page.locator('#whatif select[name="minutes"]').selectOption('5');
    await page.locator('#whatif button[type="submit"]').click();
    const out = page.locator('#whatif-out');
    await waitFor('the what-if summary', 20_000, async () => /what-if with/.test(await out.innerText()) || /error/.test(await out.innerText()));
    assert.match(await out.innerText(), /what-if with target_replica_concurrency=100: 0 decisions, peak 1 replica/);
    await waitFor('the what-if curve drawn', 5_000, async () => (await purple()) > 20);
    await page.screenshot({ path: join(SHOTS, '3-what-if-1280.png'), fullPage: true });
    // A bad override is an error message, not a curve.
    await page.locator('#whatif input[name="window"]').fill('2500ms');
    await page.locator('#whatif input[name="target_replica_concurrency"]').fill('');
    await page.locator('#whatif button[type="submit"]').click();
    await waitFor('the what-if error', 10_000, async () => /error/.test(await out.innerText()));
    assert.match(await out.innerText(), /error: .*window/);
  });

  await t.test('myelin simulate --since and myelin dashboard read the same daemon', async () => {
    const common = ['--url', daemon.controlUrl, '--state-dir', daemon.stateDir];
    type Ticks = { ticks: { from: number; replicas: number }[] };
    const same = await runCli(['simulate', '--api', 'iris', '--since', '5m', '-o', 'json', ...common]);
    assert.equal(same.code, 0, same.stderr);
    const replay = JSON.parse(same.stdout) as Ticks;
    assert.ok(replay.ticks.some((x) => x.replicas > x.from), 'the replay of the recording scales up as the daemon did');
    const calm = await runCli(['simulate', '--api', 'iris', '--since', '5m', '--set', 'target=100', '-o', 'json', ...common]);
    assert.equal(calm.code, 0, calm.stderr);
    assert.ok((JSON.parse(calm.stdout) as Ticks).ticks.every((x) => x.replicas === 1), 'target 100: one replica');
    const url = await runCli(['dashboard', ...common]);
    assert.equal(url.code, 0, url.stderr);
    assert.equal(url.stdout.trim(), dashboard);
  });

  await t.test('the event log filters, the page fits a phone, and nothing shifted', async () => {
    await page.locator('#ev-type').selectOption('scaling.decided');
    await waitFor('only decisions in the log', 5_000, async () => {
      const types = await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
      return types.length > 0 && types.every((x) => x === 'scaling.decided');
    });
    const shifts = (await page.evaluate('window.shifts.reduce((a, b) => a + b, 0)')) as number;
    assert.ok(shifts < 0.1, `cumulative layout shift ${shifts}`);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    await page.screenshot({ path: join(SHOTS, '4-phone-390.png'), fullPage: true });
    // Keyboard: the API's name is a button that Tab reaches.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 12 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate(`document.activeElement?.getAttribute('data-api') === 'iris'`)) as boolean;
    }
    assert.ok(reached, 'Tab reaches the API button');
  });
});
