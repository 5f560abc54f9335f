// Drives the web console in Debian's headless Chromium for ConsoleTest (tests/ops/console_test.cc).
//   node console_browser.mjs URL ARTIFACT_DIR NODE_ID,NODE_ID,... RUN_ID [CHROMIUM]
// RUN_ID: a `cairn repair` run of one range, finished before the page is opened.
// Talks to the test on stdin/stdout, one line each way:
//   -> "RENDERED {json}" once every node shows UP, with the partition grid and request table
//   <- "KILLED <node id>" once the test has killed that node
//   -> "OK" once the page shows it DOWN and nothing went wrong, else "FAIL <reasons>"
// Screenshots: ARTIFACT_DIR/console-all-up.png and console-node-down.png.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const [url, artifacts, idList, runId, executable = '/usr/bin/chromium'] = process.argv.slice(2);
const ids = idList.split(',');
const origin = new URL(url).origin;
const problems = [];
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

const browser = await chromium.launch({
  executablePath: executable,
  headless: true,
  // As root in a container, without a GPU, and without Chromium's own calls home, which this
  // machine's closed network would refuse.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => { if (!r.url().startsWith(origin + '/')) problems.push('request outside the node: ' + r.url()); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });

  await page.goto(url);
  for (const id of ids) {
    await page.waitForSelector(`#node-table tr[data-node-id="${id}"][data-state="UP"]`, { timeout: 30000 });
  }
  await page.waitForSelector('#partitions svg.grid rect[data-partition]');
  await page.waitForSelector('#request-table tr[data-frontdoor]');
  // The test reads one key over and over meanwhile: the hot-key panel lists it.
  await page.waitForSelector('#hotkey-table tr[data-key="console-hot"][data-keyspace="default"]', { timeout: 30000 });
  // Its row: read, never written, incremented or split.
  const hotCells = await page.locator('#hotkey-table tr[data-key="console-hot"] td').allTextContents();
  const heads = await page.locator('#hotkey-table th').allTextContents();
  const cell = (name) => hotCells[heads.indexOf(name)];
  if (!(Number(cell('Reads/s').replace(/,/g, '')) > 0)) problems.push('hot key reads/s: ' + cell('Reads/s'));
  if (cell('Incr/s') !== '0.0') problems.push('hot key incr/s: ' + cell('Incr/s'));
  if (cell('Split') !== '-') problems.push('hot key split: ' + cell('Split'));
  // The repair run the test made through another node: finished, one range of one, a full bar.
  const run = `#repair-run-table tr[data-run-id="${runId}"]`;
  await page.waitForSelector(`${run}[data-state="finished"]`, { timeout: 30000 });
  const runDone = await page.locator(run).getAttribute('data-done');
  const runTotal = await page.locator(run).getAttribute('data-total');
  if (runDone !== '1' || runTotal !== '1') problems.push(`repair run ${runId}: ${runDone} of ${runTotal} ranges`);
  const runBar = await page.locator(`${run} .bar .fill`).evaluate((e) => e.style.width);
  if (parseFloat(runBar) !== 100 || !runBar.endsWith('%')) problems.push('repair run bar: ' + runBar);
  const runCells = await page.locator(`${run} td`).allTextContents();
  const runHeads = await page.locator('#repair-run-table th').allTextContents();
  const runCell = (name) => runCells[runHeads.indexOf(name)];
  if (!runCell('Progress').includes('1 / 1 ranges')) problems.push('repair run progress: ' + runCell('Progress'));
  if (runCell('What') !== 'default · partition 5') problems.push('repair run what: ' + runCell('What'));
  if (runCell('State') !== 'finished') problems.push('repair run state: ' + runCell('State'));
  // Rates need two readings of /metrics.
  await page.waitForFunction(() => Number(document.body.dataset.polls) >= 3);
  const cells = await page.locator('#partitions svg.grid rect[data-partition]').count();
  const doors = await page.locator('#request-table tr[data-frontdoor]').evaluateAll((rows) => rows.map((r) => r.dataset.frontdoor));
  const rows = await page.locator('#node-table tbody tr').count();
  if (rows !== ids.length) problems.push(`the node table has ${rows} rows, not ${ids.length}`);
  const change = await page.locator('#topology-change').textContent();
  if (!/^Topology epoch [1-9][0-9]*: no change in progress$/.test(change)) problems.push('topology: ' + change);
  const normal = await page.locator('#node-table tbody tr', { hasText: 'NORMAL' }).count();
  if (normal !== ids.length) problems.push(`${normal} of ${ids.length} nodes shown NORMAL`);
  const repairRows = await page.locator('#repair-table tbody tr').count();
  if (repairRows < 8) problems.push(`the repair panel has ${repairRows} rows`);
  const garbage = await page.locator('#repair-table tbody tr', { hasText: 'Garbage in table files' }).textContent();
  if (!/ of /.test(garbage || '')) problems.push('repair panel garbage row: ' + garbage);
  await page.screenshot({ path: `${artifacts}/console-all-up.png`, fullPage: true });
  // Coloured by movement: with no change in progress, nothing moves and every square is grey.
  await page.selectOption('#colour-by', '-1');
  await page.waitForFunction(() => document.querySelector('#colour-by').value === '-1');
  const moving = await page.locator('#partitions svg.grid rect.moving').count();
  if (moving !== 0) problems.push(`${moving} partitions shown moving with no change in progress`);
  const coloured = await page.locator('#partitions svg.grid rect[data-partition]:not([fill="#ccc"])').count();
  if (coloured !== 0) problems.push(`${coloured} partitions coloured by movement with none moving`);
  const still = await page.locator('#partition-change').textContent();
  if (still !== 'No partition is moving.') problems.push('partition change: ' + still);
  await page.selectOption('#colour-by', '0');
  console.log('RENDERED ' + JSON.stringify({ cells, doors }));

  const { value: line } = await lines.next();
  const killed = (line || '').split(' ')[1];
  await page.waitForSelector(`#node-table tr[data-node-id="${killed}"][data-state="DOWN"]`, { timeout: 45000 });
  for (const id of ids.filter((i) => i !== killed)) {
    if (await page.locator(`#node-table tr[data-node-id="${id}"][data-state="UP"]`).count() !== 1) {
      problems.push(`node ${id} is not shown UP after node ${killed} was killed`);
    }
  }
  const summary = await page.locator('#summary').textContent();
  if (!summary.includes(`${ids.length} nodes, ${ids.length - 1} UP`)) problems.push('summary: ' + summary);
  // The partitions whose primary owner is the killed node fade.
  await page.waitForSelector('#partitions svg.grid rect.down');
  await page.screenshot({ path: `${artifacts}/console-node-down.png`, fullPage: true });
  console.log(problems.length ? 'FAIL ' + JSON.stringify(problems) : 'OK');
  process.exitCode = problems.length ? 1 : 0;
} catch (e) {
  console.log('FAIL ' + e.message.split('\n')[0] + (problems.length ? ' ' + JSON.stringify(problems) : ''));
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
  input.close();  // else the open stdin keeps Node running
}
