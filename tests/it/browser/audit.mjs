// The status page in a real browser: Debian's Chromium driven by
// playwright-core (from the npm registry, run with `executablePath`),
// axe-core's rules injected into each view.
//
//   node audit.mjs PAGE OUTDIR [PREFIX]
//
// For three views of PAGE (desktop light, desktop dark, a 375-pixel phone)
// prints one JSON object: each view's axe violations of the serious or
// critical kind, whether the page is wider than the screen, the requests
// it made that are not the page's own files, and the colours of the body
// (so the dark theme shows); writes a PNG of each view into OUTDIR.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const modules = process.env.STACK_NODE_MODULES;
const { chromium } = require(path.join(modules, "playwright-core"));
const axePath = path.join(modules, "axe-core", "axe.min.js");

const [page, outdir, prefix = "status-page"] = process.argv.slice(2);
const views = [
  { name: "light", viewport: { width: 1100, height: 1600 }, colorScheme: "light" },
  { name: "dark", viewport: { width: 1100, height: 1600 }, colorScheme: "dark" },
  { name: "phone", viewport: { width: 375, height: 812 }, colorScheme: "light", isMobile: true },
];

const browser = await chromium.launch({
  executablePath: process.env.SITEWATCH_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND"],
});
const result = {};
try {
  for (const view of views) {
    const context = await browser.newContext({
      viewport: view.viewport,
      colorScheme: view.colorScheme,
      isMobile: view.isMobile || false,
    });
    const tab = await context.newPage();
    const outside = [];
    tab.on("request", (r) => {
      if (!r.url().startsWith("file://") && !r.url().startsWith("data:")) outside.push(r.url());
    });
    await tab.goto("file://" + path.resolve(page), { waitUntil: "load" });
    await tab.addScriptTag({ path: axePath });
    const axe = await tab.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    });
    const layout = await tab.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      width: window.innerWidth,
      background: getComputedStyle(document.body).backgroundColor,
      color: getComputedStyle(document.body).color,
    }));
    await tab.screenshot({ path: path.join(outdir, `${prefix}-${view.name}.png`), fullPage: false });
    result[view.name] = {
      violations: axe.filter((v) => v.impact === "serious" || v.impact === "critical"),
      all_violations: axe,
      overflow: layout.scrollWidth > layout.width,
      layout,
      outside,
    };
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
