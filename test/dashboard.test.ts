// The dashboard the head serves at `/`, in a real browser (Debian's chromium, driven by
// playwright-core): opened once with ?token=, it shows the cluster's nodes, the tasks a driver
// just ran (by function, with the failure's stack), the objects left and its charts; without the
// token it is refused.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { runProgram } from './cluster-helpers.js';
import { startCluster } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/diagnostics-driver.ts', import.meta.url));
const ACTORS = fileURLToPath(new URL('./fixtures/actors-dashboard-driver.ts', import.meta.url));
const CHROMIUM = '/usr/bin/chromium'; // installed by scripts/system-packages.mjs (npm test)

test('the dashboard shows the nodes, the tasks by function and a failure with its stack, in Chromium', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const run = await runProgram(DRIVER, [cluster.nodes[0]!.address, 'keep-named', 'shoal-test-child'], {});
  assert.equal(run.code, 0, run.stderr);
  const actors = await runProgram(ACTORS, [cluster.nodes[0]!.address, 'shoal-test-child'], {});
  assert.equal(actors.code, 0, actors.stderr);
  assert.equal(actors.stdout.trim(), '2 pong');
  const base = cluster.url.replace(/^ws/, 'http');
  const shots = mkdtempSync(join(tmpdir(), 'shoal-dashboard-'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Without the token: refused.
    const refused = await page.goto(`${base}/`);
    assert.equal(refused?.status(), 401);
    // With it once: the page loads (the cookie carries the token to its JSON calls).
    await page.goto(`${base}/?token=${cluster.token}`);
    assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
    const nodes = page.locator('#nodes tbody tr');
    await nodes.filter({ hasText: cluster.nodes[1]!.nodeId }).waitFor();
    assert.equal(await nodes.count(), 2);
    // Its gpu free again once its report after the task reached the head (the page refreshes every 2 s).
    await nodes.filter({ hasText: cluster.nodes[1]!.nodeId }).filter({ hasText: 'gpu 1/1' }).waitFor();
    const failing = page.locator('#functions tbody tr', { hasText: 'failsOnPurpose' });
    await failing.waitFor();
    // function, submitted, started, finished, failed
    assert.deepEqual((await failing.locator('td').allInnerTexts()).slice(0, 5), ['failsOnPurpose', '1', '1', '0', '1']);
    // The gpu task, spilled there from the driver's node: counted once (submitted on one, run on the other).
    const spilled = page.locator('#functions tbody tr', { hasText: 'anonymous' });
    assert.deepEqual((await spilled.locator('td').allInnerTexts()).slice(0, 5), ['anonymous', '1', '1', '1', '0']);
    // The named table the driver left on its node, with its size and where it is.
    const table = page.locator('#objects tbody tr', { hasText: 'named dashboard-table' });
    await table.waitFor();
    const [, size, what, where] = await table.locator('td').allInnerTexts();
    assert.match(size!, /^512\.\d KiB$/, 'its 512 KiB of data and its header');
    assert.deepEqual([what, where], ['object, named dashboard-table', cluster.nodes[0]!.nodeId]);
    // The detached actor lives on its node; the other died with its program.
    const kept = page.locator('#actors tbody tr', { hasText: 'dashboard-counter' });
    await kept.waitFor();
    assert.deepEqual((await kept.locator('td').allInnerTexts()).slice(1, 7), ['Counter', 'dashboard-counter', 'alive, detached', cluster.nodes[0]!.nodeId, cluster.nodes[0]!.nodeId, '0']);
    const gone = page.locator('#actors tbody tr', { hasText: 'Scratch' });
    await gone.waitFor();
    assert.match((await gone.locator('td').allInnerTexts())[3]!, /^dead: /);
    const failure = page.locator('#failures div', { hasText: 'failsOnPurpose' });
    await failure.waitFor();
    assert.match(await failure.innerText(), /Error: on purpose/);
    assert.match(await failure.locator('pre').innerText(), /diagnostics-driver\.ts:\d+/, 'the stack names the driver file');
    // A second refresh draws the charts' lines.
    await page.locator('#store path').waitFor({ state: 'attached' });
    const shot = join(shots, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'a screenshot was written');
    // SHOAL_DASHBOARD_SHOT=docs/dashboard.png keeps it (the README's picture is made so).
    if (process.env.SHOAL_DASHBOARD_SHOT) copyFileSync(shot, process.env.SHOAL_DASHBOARD_SHOT);
  } finally {
    await browser.close();
    rmSync(shots, { recursive: true, force: true });
  }
});
