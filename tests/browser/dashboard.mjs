// Opens the migration dashboard of a running demo in headless chromium and checks what a
// platform engineer relies on, on a laptop screen (1366x768) and on a wall display
// (2560x1440):
// - every route of the table in force is listed;
// - every compared route (shadow, canary with compare) shows a numeric match rate;
// - the autopilot route is seen in canary mode with its percent, the autopilot state and
//   the next gate, the event log has the autopilot's decision, and the routes-by-mode
//   chart over time shows the canary;
// - a real mismatch renders as a side-by-side diff with the differing field highlighted;
// - nothing overflows the viewport horizontally; no page error, no CSP violation.
// A screenshot of each viewport is saved, pass or fail.
// usage: node dashboard.mjs ADMIN_URL ARTIFACT_DIR
// The whole run is bounded by DASHBOARD_DEADLINE_MS (default 240 s): every wait gets
// what is left of it.
import { chromium } from "playwright-core";

const [admin, artifacts] = process.argv.slice(2);
const deadline = Date.now() + Number(process.env.DASHBOARD_DEADLINE_MS || 240000);
/// A wait of at most `cap` ms, and never past the deadline.
const budget = (cap) => Math.max(1, Math.min(cap, deadline - Date.now()));
/// The route whose diffs the test shows (browser-test.sh makes it mismatch).
const DIFF_ROUTE = "top-content";

async function api(path, timeout = budget(10000)) {
  const r = await fetch(admin + path, { signal: AbortSignal.timeout(timeout) });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

async function openDashboard(browser, viewport, errors) {
  const page = await browser.newPage({ viewport });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    // A CSP violation is a bug of the page; a 404 (e.g. /favicon.ico) is not.
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) errors.push(m.text());
  });
  await page.goto(`${admin}/?route=${encodeURIComponent(DIFF_ROUTE)}`, { timeout: budget(30000) });
  return page;
}

async function everyRouteListed(page, names) {
  for (const name of names) {
    await page.locator(`#routes tbody tr[data-route="${name}"]`).waitFor({ timeout: budget(30000) });
  }
  const listed = await page.locator("#routes tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.route));
  const missing = names.filter((n) => !listed.includes(n));
  if (missing.length) throw new Error(`routes not listed: ${missing.join(", ")}`);
  return listed.length;
}

/// The diff of DIFF_ROUTE: both columns side by side, the same field highlighted in both.
async function diffRendered(page) {
  const legacy = page.locator("#diffs .diff .col.legacy pre.json .changed").first();
  await legacy.waitFor({ timeout: budget(60000) });
  const pointer = await legacy.getAttribute("data-pointer");
  if (!pointer || !pointer.startsWith("/")) throw new Error(`no JSON pointer on the highlight: ${pointer}`);
  const candidate = page.locator(`#diffs .diff .col.candidate pre.json .changed[data-pointer="${pointer}"]`).first();
  await candidate.waitFor({ timeout: budget(5000) });
  const layout = await page.locator("#diffs .diff").first().evaluate((d) => {
    const [l, c] = [d.querySelector(".col.legacy"), d.querySelector(".col.candidate")].map((e) => e.getBoundingClientRect());
    const mark = d.querySelector(".col.legacy .changed");
    return { l, c, background: getComputedStyle(mark).backgroundColor };
  });
  if (!(layout.c.left >= layout.l.right - 1 && Math.abs(layout.c.top - layout.l.top) < 1))
    throw new Error(`legacy and candidate are not side by side: ${JSON.stringify(layout)}`);
  if (/rgba\(0, 0, 0, 0\)|transparent/.test(layout.background))
    throw new Error(`the differing field is not highlighted: ${layout.background}`);
  const fields = await page.locator("#fields li").allTextContents();
  if (!fields.some((f) => f.startsWith("/"))) throw new Error(`no differing field listed: ${fields}`);
  return pointer;
}

async function noHorizontalOverflow(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.scrollingElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  if (scrollWidth > innerWidth) throw new Error(`${label}: the page overflows horizontally (${scrollWidth} > ${innerWidth})`);
}

/// Waits until the autopilot route shows a canary step, then reads its row at once.
async function canaryShown(page, route, steps) {
  const row = `#routes tbody tr[data-route="${route}"]`;
  try {
    await page.waitForFunction(
      (row) => /^canary \d+(\.\d+)?%$/.test(document.querySelector(`${row} .badge.m-canary`)?.textContent ?? ""),
      row,
      { timeout: budget(150000), polling: 500 },
    );
  } catch (e) {
    // What the autopilot was doing, for the report (past the deadline too, briefly).
    const about = (path) => api(path, 3000).catch((err) => ({ error: err.message }));
    const [status, events] = await Promise.all([about("/admin/autopilot"), about("/admin/events?limit=5")]);
    throw new Error(`${route} never showed in canary mode (${e.message}); autopilot: ${JSON.stringify(status.routes?.[route] ?? status)}; events: ${JSON.stringify(events.events ?? events)}`);
  }
  const seen = await page.locator(row).evaluate((tr) => ({
    badge: tr.querySelector(".badge").textContent,
    state: tr.cells[2].querySelector("b")?.textContent,
    next: tr.cells[2].querySelector(".next")?.textContent ?? "",
  }));
  const percent = Number(seen.badge.match(/(\d+(\.\d+)?)%/)[1]);
  if (!steps.includes(percent)) throw new Error(`canary ${percent}% is not one of the autopilot's steps ${steps}`);
  if (seen.state !== "canary") throw new Error(`autopilot state of ${route}: ${seen.state}`);
  const gate = /^\d+ of \d+ (compared responses|extracted requests|legacy requests)$|^window \d+s of \d+s$|^advancing to |^at the last step$/;
  if (!gate.test(seen.next)) throw new Error(`no next gate for ${route}: ${JSON.stringify(seen.next)}`);
  return { percent, next: seen.next };
}

/// Every compared route shows a match rate that is a number between 0 and 100 %, over
/// at least one comparison.
async function matchRates(page, routes) {
  const rates = {};
  for (const name of routes) {
    const cell = `td.match[data-route="${name}"]`;
    await page.waitForFunction(
      (cell) => /^\d+(\.\d+)?%$/.test(document.querySelector(`${cell} .rate`)?.textContent ?? ""),
      cell,
      { timeout: budget(30000), polling: 500 },
    );
    const { rate, count } = await page.locator(cell).evaluate((td) => ({
      rate: td.querySelector(".rate").textContent,
      count: td.querySelector(".count").textContent,
    }));
    const value = Number(rate.slice(0, -1));
    const compared = Number(count.match(/of (\d+)/)?.[1]);
    if (!(value >= 0 && value <= 100)) throw new Error(`${name}: match rate ${rate}`);
    if (!(compared > 0)) throw new Error(`${name}: match rate ${rate} over ${count}`);
    rates[name] = rate;
  }
  return rates;
}

async function autopilotEvent(page, route) {
  const item = page.locator("#events li", { has: page.locator(".actor", { hasText: "autopilot" }) }).filter({ hasText: route }).first();
  await item.waitFor({ timeout: budget(30000) });
  return (await item.textContent()).trim();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const table = await api("/admin/routes");
  const names = table.routes.map((r) => r.name);
  const pilots = Object.entries((await api("/admin/autopilot")).routes);
  if (!pilots.length) throw new Error("the demo has no route under the autopilot");
  const [pilot, pilotStatus] = pilots[0];

  for (const [label, viewport, file, full] of [
    ["laptop", { width: 1366, height: 768 }, "dashboard.png", true],
    ["wall", { width: 2560, height: 1440 }, "dashboard-wall.png", false],
  ]) {
    const errors = [];
    let page;
    try {
      page = await openDashboard(browser, viewport, errors);
      const listed = await everyRouteListed(page, names);
      let summary = `${listed} routes`;
      if (full) {
        const canary = await canaryShown(page, pilot, pilotStatus.steps);
        // Compared routes, as the page sees them: shadow, or canary/extracted with a comparison.
        const dashboard = await api("/admin/dashboard");
        const compared = dashboard.routes.filter((r) => r.shadowed).map((r) => r.name);
        if (!dashboard.routes.some((r) => r.mode === "shadow")) throw new Error("no route in shadow mode");
        const rates = await matchRates(page, compared);
        const event = await autopilotEvent(page, pilot);
        const canaries = Number(await page.locator('.mode-box[data-mode="canary"] .n').textContent());
        if (!(canaries >= 1)) throw new Error(`canary routes: ${canaries}`);
        // Progress over time: the canary appears in the routes-by-mode chart too.
        await page.locator("#modes-history rect.m-canary").first().waitFor({ timeout: budget(20000) });
        summary += `, match rates ${JSON.stringify(rates)}, ${pilot} canary ${canary.percent}% next gate "${canary.next}", event "${event}"`;
      }
      const pointer = await diffRendered(page);
      await noHorizontalOverflow(page, label);
      if (errors.length) throw new Error("page errors: " + errors.join("; "));
      console.log(`dashboard ok (${label} ${viewport.width}x${viewport.height}): ${summary}, highlighted ${pointer}`);
    } finally {
      if (page) await page.screenshot({ path: `${artifacts}/${file}`, fullPage: true, timeout: 15000 }).catch((e) => console.error(`screenshot ${file}: ${e.message}`));
    }
  }
} catch (e) {
  failed = true;
  console.error("dashboard browser test failed:", e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
