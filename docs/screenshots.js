// Headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, no browser download) for
// docs/screenshots.py: argv[2] is a JSON list of {url, path, width, height, wait, actions: [{click|role+name|key}]}.
const { chromium } = require('playwright-core');
(async () => {
  const jobs = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-first-run'] });
  for (const j of jobs) {
    const ctx = await browser.newContext({ viewport: { width: j.width || 1440, height: j.height || 900 } });
    await ctx.addInitScript(() => {
      // a fresh profile: MLflow 3.17 would open its assistant panel and GenAI mode; show the model-training view
      localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
      localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
      localStorage.setItem('mlflow.workflowType_v1', '"machine_learning"');
      localStorage.setItem('mlflow.detectIssues.guidanceShown_v1', 'true');
    });
    const page = await ctx.newPage();
    await page.goto(j.url, { waitUntil: 'load', timeout: 60000 });
    await page.waitForTimeout(j.wait || 6000);
    for (const a of (j.actions || [])) {
      try {
        if (a.click) {
          const loc = page.getByText(a.click, { exact: !!a.exact });
          await (a.last ? loc.last() : loc.first()).click({ timeout: 10000 });
        }
        if (a.role) await page.getByRole(a.role, { name: a.name }).first().click({ timeout: 10000 });
        if (a.key) await page.keyboard.press(a.key);
        await page.waitForTimeout(a.wait || 800);
      } catch (e) { console.error(`${j.path}: action ${JSON.stringify(a)} failed: ${e.message.split('\n')[0]}`); }
    }
    await page.screenshot({ path: j.path, fullPage: !!j.fullPage });
    console.log(`${j.path} <- ${j.url}`);
    await ctx.close();
  }
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
