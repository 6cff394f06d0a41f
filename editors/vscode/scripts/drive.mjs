// Drives VS Code (code-server in headless Chromium, through playwright-core) with the packaged lokal
// extension: the status bar shows the workspace's tier once the model is ready; typing in src/lib.rs shows
// ghost text from lokal; Tab accepts it, and the saved file is the original plus what was typed plus
// exactly the text that was shown. Run by drive-code-server.sh:
//
//   node drive.mjs <playwright-core dir> <chromium> <url> <shots dir> <line> <file>
// <line>: 1-based line of <file> (src/lib.rs of the workspace) to type at, the empty body of sum_of_squares.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';

const [pwDir, chromiumPath, url, shotsDir, lineArg, file] = process.argv.slice(2);
const line = Number(lineArg);
const { chromium } = createRequire(path.join(pwDir, 'package.json'))('playwright-core');
const nbsp = (s) => s.replace(/\u00a0/g, ' ');
const original = fs.readFileSync(file, 'utf8');

const t0 = Date.now();
const since = (t) => ((Date.now() - t) / 1000).toFixed(2);
const log = (s) => process.stdout.write(`[${since(t0).padStart(6)}s] ${s}\n`);
let page;
const shot = async (name) => {
  const p = path.join(shotsDir, `${name}.png`);
  await page.screenshot({ path: p });
  return p;
};
async function fail(msg) {
  log(`FAIL ${msg}`);
  if (page) {
    log(`screenshot: ${await shot('failure').catch(() => '(none)')}`);
  }
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
  log('workbench loaded');

  // 1. The extension's status bar item: "lokal T<tier> · <model>" once the server answered lokal/status
  //    with the model ready ("lokal: starting" before; "lokal T3 · loading" while the model loads).
  const bar = page.locator('.statusbar-item').filter({ hasText: /^\s*lokal/ }).first();
  await bar.waitFor({ timeout: 120_000 }).catch(() => fail('no lokal status bar item: the extension did not activate'));
  let barText = '';
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    barText = nbsp(await bar.innerText()).trim();
    if (/^lokal T\d · /.test(barText) && !/· (loading|failed|\?)$/.test(barText)) {
      break;
    }
    await page.waitForTimeout(300);
  }
  if (!/^lokal T3 · /.test(barText) || /· (loading|failed|\?|error)$/.test(barText)) {
    await fail(`status bar shows "${barText}", expected "lokal T3 · <model>" (the fixture's .lokal.toml: tier = 3)`);
  }
  log(`status bar: "${barText}"`);

  // 2. Open src/lib.rs (Quick Open), go to the empty body of sum_of_squares, type.
  await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } });
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget input').waitFor();
  await page.keyboard.type('lib.rs');
  await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: 'lib.rs' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await page.locator('.editor-instance .view-lines').first().getByText('sum_of_squares').first().waitFor({ timeout: 30_000 });
  log('opened src/lib.rs');
  await page.keyboard.press('Control+G');
  await page.keyboard.type(String(line));
  await page.keyboard.press('Enter');
  await page.keyboard.press('End');
  const typed = 'xs.iter()';
  await page.keyboard.type(typed, { delay: 50 });
  const tTyped = Date.now();

  // 3. Ghost text: the first line inline in the cursor's line (.ghost-text-decoration), further lines in a
  //    view zone below it (.ghost-text lines).
  const ghostSel = '.ghost-text-decoration, .ghost-text';
  await page.locator(ghostSel).first().waitFor({ timeout: 90_000 }).catch(() => fail('no ghost text appeared after typing'));
  await page.waitForTimeout(300); // let the view zone with the further lines render
  const shownAfter = since(tTyped);
  const ghost = await page.evaluate(() => {
    const inline = [...document.querySelectorAll('.ghost-text-decoration')]
      .filter((e) => !e.matches('span.ghost-text'))
      .map((e) => e.textContent)
      .join('');
    // The view zone's lines: syntax-highlighted spans, one container per line.
    const containers = [];
    for (const span of document.querySelectorAll('span.ghost-text')) {
      const c = span.closest('.view-line') ?? span.parentElement;
      if (!containers.includes(c)) {
        containers.push(c);
      }
    }
    const zone = containers.map((c) => [...c.querySelectorAll('span.ghost-text')].map((e) => e.textContent).join(''));
    return { inline, zone };
  });
  const ghostText = nbsp([ghost.inline, ...ghost.zone.map(nbsp)].join('\n'));
  if (process.env.LOKAL_DRIVE_DEBUG) {
    log(await page.evaluate(() => [...document.querySelectorAll('.ghost-text-decoration, .ghost-text')].map((e) => { const p = []; for (let x = e; x && p.length < 6; x = x.parentElement) p.push(x.className); return `${JSON.stringify(e.textContent)} in ${p.join(' < ')}`; }).join('\n')));
  }
  if (ghostText.trim() === '') {
    await fail('the ghost text element is empty');
  }
  log(`ghost text ${shownAfter}s after the last key: ${JSON.stringify(ghostText)}`);
  log(`screenshot: ${await shot('ghost-text')}`);

  // 4. Tab accepts it; saved, the file is the original with the typed text plus exactly the shown text.
  await page.keyboard.press('Tab');
  await page.waitForTimeout(300);
  await page.keyboard.press('Control+S');
  const lines = original.split('\n');
  lines[line - 1] = `${lines[line - 1]}${typed}${ghostText}`;
  const expected = lines.join('\n');
  let saved = '';
  const saveDeadline = Date.now() + 10_000;
  while (Date.now() < saveDeadline) {
    saved = fs.readFileSync(file, 'utf8');
    if (saved === expected) {
      break;
    }
    await page.waitForTimeout(200);
  }
  if (saved !== expected) {
    await fail(`after Tab and save the file is\n${saved}\nexpected\n${expected}`);
  }
  const savedLines = saved.split('\n');
  const n = ghostText.split('\n').length;
  log(`Tab accepted; saved lines ${line}-${line + n - 1}: ${JSON.stringify(savedLines.slice(line - 1, line - 1 + n).join('\n'))}`);
  log(`screenshot: ${await shot('accepted')}`);

  // 5. The status bar item's command (lokal: Show Workspace Tier and Model) names the folder's tier.
  await bar.click();
  const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: 'Tier 3 (file)' }).first();
  await toast.waitFor({ timeout: 15_000 }).catch(() => fail('clicking the status bar item showed no notification with "Tier 3 (file)" (the tooltip of the item)'));
  log(`status bar click: ${JSON.stringify(nbsp(await toast.innerText()).split('\n')[0])}`);
  log('vscode (code-server): PASS');
} finally {
  await browser.close();
}
