// Opens the migration dashboard of a running demo in headless chromium and checks what a
// platform engineer relies on: the routes are listed, match rates are shown, and a real
// mismatch renders as a side-by-side diff with the differing field highlighted.
// usage: node dashboard.mjs ADMIN_URL SCREENSHOT_PATH
import { chromium } from "playwright-core";

const [admin, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${admin}/?route=top-content`);
  const row = page.locator('#routes tbody tr[data-route="top-content"]');
  await row.waitFor({ timeout: 30000 });
  for (const name of ["top-content", "subscription", "preferences", "user-profile"]) {
    await page.locator(`#routes tbody tr[data-route="${name}"]`).waitFor({ timeout: 10000 });
  }
  const rate = page.locator('td.match[data-route="top-content"] .rate');
  await rate.waitFor({ timeout: 30000 });
  const rateText = await rate.textContent();
  if (!/%$/.test(rateText)) throw new Error(`match rate not shown: ${rateText}`);
  const changed = page.locator("#diffs .diff .col.legacy pre.json .changed").first();
  await changed.waitFor({ timeout: 60000 });
  const pointer = await changed.getAttribute("data-pointer");
  if (!pointer || !pointer.startsWith("/")) throw new Error(`no JSON pointer on the highlight: ${pointer}`);
  const pointers = await page.locator("#fields li").allTextContents();
  if (!pointers.length) throw new Error("no differing field listed");
  const candidate = page.locator("#diffs .diff .col.candidate pre.json .changed").first();
  await candidate.waitFor({ timeout: 5000 });
  const share = await page.locator("#share").textContent();
  const modes = await page.locator('.mode-box[data-mode="shadow"] .n').textContent();
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`dashboard ok: top-content match rate ${rateText}, highlighted ${pointer}, extracted share ${share}, shadow routes ${modes}`);
} catch (e) {
  failed = true;
  console.error("dashboard browser test failed:", e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
