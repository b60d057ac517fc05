// The web page in real headless Chromium, driven by Playwright (playwright-core, no browser
// download: Debian's chromium). Run by scripts/browser-test.sh against `flowwatch replay
// --serve`; every check is bounded in time and the last line is "browser: N passed, M failed".
//
// Environment: BASE_URL (the served replay), CHROMIUM (the browser), PLAYWRIGHT_DIR (where
// playwright-core is installed), EXAMPLE (which recorded example is served), OPERATOR_TOKEN
// (the server's token), SCREENSHOT (a path to save a screenshot to, optional).

import { createRequire } from "node:module";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_DIR || "playwright-core");

const BASE_URL = process.env.BASE_URL;
const EXAMPLE = process.env.EXAMPLE || "";
const TOKEN = process.env.OPERATOR_TOKEN || "";
const SCREENSHOT = process.env.SCREENSHOT || "";
const TIMEOUT = 15000;

// The hostile strings of tests/examples/hostile-payload.jsonl.
const H_SCRIPT = "<script>alert('xss-script')</script>";
const H_IMG = "<img src=x onerror=alert('xss-img')>";
const H_BREAK = "</pre></td></tr></table><script>alert('xss-break')</script>";
// Quotes that try to leave an attribute (a business key), and a javascript: link (a note).
const H_ATTR = "ord-9003\" data-x='y'><svg onload=alert('xss-attr')>";
const H_LINK = "\"'><a href=\"javascript:alert('xss-quote')\">click</a>";

let passed = 0;
let failed = 0;

async function check(name, body) {
  try {
    await body();
    passed++;
    console.log("ok   " + name);
  } catch (error) {
    failed++;
    console.log("FAIL " + name + "\n     " + String(error && error.stack ? error.stack : error).split("\n").join("\n     "));
  }
}

async function api(path) {
  const response = await fetch(BASE_URL + "/api/v1" + path, { signal: AbortSignal.timeout(TIMEOUT) });
  assert.equal(response.status, 200, path);
  return response.json();
}

async function waitForServer() {
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const response = await fetch(BASE_URL + "/livez", { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch (_) {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("flowwatch did not answer on " + BASE_URL + " within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Waits for the page to finish a render newer than `after` (body[data-ready] counts renders).
async function rendered(page, after = 0) {
  await page.waitForFunction((n) => Number(document.body.getAttribute("data-ready") || 0) > n, after, { timeout: TIMEOUT });
  return Number(await page.getAttribute("body", "data-ready"));
}

async function go(page, hash) {
  const before = Number((await page.getAttribute("body", "data-ready")) || 0);
  await page.evaluate((h) => { location.hash = h; }, hash);
  return rendered(page, before);
}

// What the diagrams show, per flow and step, read from the SVG's data attributes and totals.
async function shownCounts(page) {
  return page.evaluate(() => {
    const flows = {};
    for (const card of document.querySelectorAll("section.flow")) {
      const steps = {};
      for (const group of card.querySelectorAll("svg g.node.step")) {
        steps[group.getAttribute("data-step")] = {
          waiting: Number(group.getAttribute("data-waiting")),
          breached: Number(group.getAttribute("data-breached")),
          stuck: Number(group.getAttribute("data-stuck")),
          completed: Number(group.getAttribute("data-completed")),
          text: group.textContent,
          heat: group.getAttribute("class"),
        };
      }
      const totals = {};
      for (const pill of card.querySelectorAll(".totals [data-total]")) totals[pill.getAttribute("data-total")] = pill.textContent;
      flows[card.getAttribute("data-flow")] = { steps, totals };
    }
    return flows;
  });
}

async function injected(page) {
  return page.evaluate(() => ({
    images: document.querySelectorAll("img").length,
    scripts: [...document.querySelectorAll("script")].map((s) => s.getAttribute("src")),
    handlers: [...document.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name))).length,
    brokenOut: document.querySelectorAll("[data-x]").length,
    scriptLinks: [...document.querySelectorAll("a[href]")].filter((a) => /^\s*javascript:/i.test(a.getAttribute("href"))).length,
    xss: window.__xss || null,
  }));
}

function assertNothingInjected(found) {
  assert.equal(found.images, 0, "no <img> element may appear (the page has none of its own)");
  assert.deepEqual(found.scripts, ["/assets/dom.js", "/assets/diagram.js", "/assets/app.js"], "only the page's own scripts");
  assert.equal(found.handlers, 0, "no inline event handler attribute");
  assert.equal(found.brokenOut, 0, "no attribute written by a payload's quotes");
  assert.equal(found.scriptLinks, 0, "no javascript: link");
}

async function main() {
  await waitForServer();
  const userDataDir = mkdtempSync(join(tmpdir(), "flowwatch-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1440, height: 1000 },
    timeout: 60000,
  });
  const consoleErrors = [];
  const dialogs = [];
  const foreign = [];
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (message) => { if (message.type() === "error" || message.type() === "warning") consoleErrors.push(message.type() + ": " + message.text()); });
  page.on("pageerror", (error) => consoleErrors.push("page error: " + error.message));
  page.on("dialog", async (dialog) => { dialogs.push(dialog.type() + ": " + dialog.message()); await dialog.dismiss(); });
  page.on("request", (request) => { if (!request.url().startsWith(BASE_URL + "/") && !request.url().startsWith("data:")) foreign.push(request.url()); });
  page.on("response", (response) => { if (response.status() >= 400) consoleErrors.push("HTTP " + response.status() + " " + response.url()); });

  try {
    await check("the page loads and renders every flow", async () => {
      const response = await page.goto(BASE_URL + "/", { waitUntil: "load", timeout: TIMEOUT });
      assert.equal(response.status(), 200);
      const policy = response.headers()["content-security-policy"] || "";
      assert.match(policy, /^default-src 'self'/);
      await rendered(page);
      const flows = (await api("/flows")).flows;
      const shown = await shownCounts(page);
      assert.deepEqual(Object.keys(shown).sort(), flows.map((flow) => flow.name).sort());
    });

    await check("each flow's diagram shows the API's counts per step", async () => {
      const flows = (await api("/flows")).flows;
      const shown = await shownCounts(page);
      for (const flow of flows) {
        const card = shown[flow.name];
        assert.ok(card, "a card for " + flow.name);
        assert.deepEqual(Object.keys(card.steps), flow.steps.map((step) => step.name), flow.name + ": one node per step, in order");
        for (const step of flow.steps) {
          const node = card.steps[step.name];
          for (const field of ["waiting", "breached", "stuck", "completed"]) assert.equal(node[field], step[field], flow.name + "/" + step.name + " " + field);
          assert.ok(node.text.includes(step.waiting + " waiting") && node.text.includes(step.breached + " breached"), "the numbers are drawn: " + node.text);
          const hot = step.breached + step.stuck > 0;
          assert.equal(!/heat0/.test(node.heat), hot, flow.name + "/" + step.name + " heat " + node.heat);
        }
        for (const field of ["open", "breached", "stuck", "completed", "failed"]) assert.equal(card.totals[field], flow[field] + " " + field, flow.name + " total " + field);
      }
    });

    await check("the attention lists hold the API's breached and stuck instances", async () => {
      const flows = (await api("/flows")).flows;
      for (const state of ["breached", "stuck"]) {
        const expected = [];
        for (const flow of flows) {
          if (!flow[state]) continue;
          const found = await api("/flows/" + encodeURIComponent(flow.name) + "/instances?state=" + state + "&limit=50");
          for (const instance of found.instances) expected.push(flow.name + " " + instance.key);
        }
        const listed = await page.$$eval("#" + state + " tbody tr", (rows) => rows.map((row) => row.cells[0].textContent + " " + row.cells[1].textContent));
        assert.deepEqual(listed.sort(), expected.sort(), state);
      }
      const orphans = (await api("/orphans")).orphans;
      const orphanRows = await page.$$eval("#orphans tbody tr", (rows) => rows.map((row) => row.cells[2].textContent));
      assert.deepEqual(orphanRows, orphans.map((orphan) => orphan.value));
    });

    await check("the page refreshes itself by polling", async () => {
      const before = Number(await page.getAttribute("body", "data-ready"));
      await rendered(page, before); // the next poll, about 2 s later
      const clock = (await api("/flows")).clock;
      assert.equal(await page.textContent("#status"), clock ? "event clock " + clock.replace("T", " ").replace(/\.000Z$/, "Z") : "no records yet");
      assert.match(await page.getAttribute("#status", "title"), /^refreshed at /);
    });

    await check("a click on a step lists the instances waiting in it", async () => {
      const flows = (await api("/flows")).flows;
      let chosen = null;
      for (const flow of flows) for (const step of flow.steps) if (!chosen && step.waiting > 0) chosen = { flow: flow.name, step: step.name };
      if (!chosen) chosen = { flow: flows[0].name, step: flows[0].steps[0].name };
      const before = Number(await page.getAttribute("body", "data-ready"));
      await page.locator(`section.flow[data-flow="${chosen.flow}"] g.step[data-step="${chosen.step}"]`).click();
      await rendered(page, before);
      await page.waitForSelector("#flow");
      const expected = await api("/flows/" + encodeURIComponent(chosen.flow) + "/instances?state=open&step=" + encodeURIComponent(chosen.step) + "&limit=50");
      const keys = await page.$$eval("#flow tbody tr", (rows) => rows.map((row) => row.getAttribute("data-key")));
      assert.deepEqual(keys, expected.instances.map((instance) => instance.key));
      assert.ok((await page.textContent("#flow h2")).includes("(" + expected.total + ")"));
      await go(page, "#/");
    });

    // An instance with history: the first breached one, else the first open one, else any.
    let target = null;
    for (const state of ["breached", "open", ""]) {
      for (const flow of (await api("/flows")).flows) {
        const found = await api("/flows/" + encodeURIComponent(flow.name) + "/instances?limit=1" + (state ? "&state=" + state : ""));
        if (found.instances.length) { target = { flow: flow.name, key: found.instances[0].key }; break; }
      }
      if (target) break;
    }
    if (EXAMPLE === "hostile-payload") target = { flow: "order-fulfillment", key: "ord-9001" };

    await check("an instance page shows its timeline, steps and history", async () => {
      assert.ok(target, "the example has an instance");
      const detail = await api("/flows/" + encodeURIComponent(target.flow) + "/instances/" + encodeURIComponent(target.key));
      await go(page, "#/flows/" + encodeURIComponent(target.flow) + "/instances/" + encodeURIComponent(target.key));
      await page.waitForSelector("#timeline-svg");
      assert.equal(await page.getAttribute("#instance", "data-key"), target.key);
      const events = detail.history.filter((entry) => entry.type === "event").length;
      assert.ok(events > 0, "the served replay keeps the audit trail");
      assert.equal(await page.locator("#timeline-svg circle.event").count(), events, "one dot per event");
      const windows = detail.steps.reduce((sum, step) => sum + step.windows.length, 0);
      assert.equal(await page.locator("#timeline-svg rect.window").count(), windows, "one bar per SLA window");
      const breachedWindows = detail.steps.reduce((sum, step) => sum + step.windows.filter((w) => w.breached).length, 0);
      assert.equal(await page.locator("#timeline-svg rect.window.breached").count(), breachedWindows);
      assert.equal(await page.locator("#history tbody tr").count(), detail.history.length);
      assert.deepEqual(await page.$$eval(".step-card", (cards) => cards.map((card) => card.getAttribute("data-step"))), detail.steps.map((step) => step.name));
      const firstPayload = detail.history.find((entry) => entry.type === "event").payload;
      const shown = await page.textContent("#history tbody tr pre.payload");
      assert.deepEqual(JSON.parse(shown), firstPayload, "the payload is shown as received");
    });

    if (EXAMPLE === "hostile-payload") {
      await check("hostile payloads render as text, not markup", async () => {
        const texts = await page.$$eval("pre.payload", (pres) => pres.map((pre) => pre.textContent));
        const all = texts.join("\n");
        for (const hostile of [H_SCRIPT, H_IMG, H_BREAK]) assert.ok(all.includes(JSON.stringify(hostile).slice(1, -1)), "shown literally: " + hostile);
        assertNothingInjected(await injected(page));
      });

      await check("a hostile business key is text in the lists, the link and the instance page", async () => {
        await go(page, "#/");
        const breached = await page.textContent("#breached");
        assert.ok(breached.includes(H_IMG), "the key is listed as text");
        assert.ok((await page.textContent("#orphans")).includes(H_SCRIPT), "the orphan alias value is text");
        assertNothingInjected(await injected(page));
        const before = Number(await page.getAttribute("body", "data-ready"));
        await page.locator("#breached a", { hasText: H_IMG }).click();
        await rendered(page, before);
        await page.waitForSelector("#instance");
        assert.equal(await page.getAttribute("#instance", "data-key"), H_IMG);
        assert.ok((await page.textContent("#instance h1")).includes(H_IMG));
        assertNothingInjected(await injected(page));
      });

      await check("quotes in a business key and a payload stay inside their text", async () => {
        await go(page, "#/flows/order-fulfillment/instances/" + encodeURIComponent(H_ATTR));
        await page.waitForSelector("#instance");
        assert.equal(await page.getAttribute("#instance", "data-key"), H_ATTR);
        assert.ok((await page.textContent("#instance h1")).includes(H_ATTR), "the key is the heading's text");
        const payloads = (await page.$$eval("pre.payload", (pres) => pres.map((pre) => pre.textContent))).join("\n");
        assert.ok(payloads.includes(JSON.stringify(H_LINK).slice(1, -1)), "the note is shown literally");
        assertNothingInjected(await injected(page));
        await go(page, "#/");
        assertNothingInjected(await injected(page));
      });

      await check("operator buttons ask for the token, then act", async () => {
        await go(page, "#/flows/order-fulfillment/instances/ord-9001");
        await page.evaluate(() => sessionStorage.clear());
        const retry = page.locator('.step-card[data-step="payment"] button', { hasText: "Retry step now" });
        await retry.click();
        await page.waitForSelector("#command-result .message.error");
        assert.match(await page.textContent("#command-result"), /bearer token/);
        await page.fill("#token-input", TOKEN);
        await page.click("#token-save");
        assert.equal(await page.evaluate(() => sessionStorage.getItem("flowwatch.operatorToken")), TOKEN);
        assert.equal(await page.inputValue("#token-input"), "", "the field is cleared");
        // The payment's retries are spent (the server would refuse another, 409); its last
        // breach is unresolved, so resolve it.
        const note = "browser test <b>note</b>";
        await page.fill("#operator-note", note);
        await page.locator('.step-card[data-step="payment"] button', { hasText: "Resolve breach" }).click();
        await page.waitForSelector("#command-result .message.ok");
        const detail = await api("/flows/order-fulfillment/instances/ord-9001");
        const operator = detail.history.filter((entry) => entry.type === "operator");
        assert.equal(operator.length, 1, "the command is in the audit trail");
        assert.equal(operator[0].command, "resolve");
        assert.equal(operator[0].note, note);
        assert.equal(detail.steps.find((step) => step.name === "payment").unresolved, false);
        await page.waitForSelector("#timeline-svg circle.operator");
        assert.ok((await page.textContent("#history")).includes(note), "the note is shown as text");
        assertNothingInjected(await injected(page));
        // Cancelling asks twice, in the page.
        await page.click("#cancel-instance");
        assert.equal(await page.textContent("#cancel-instance"), "Click again to cancel it");
        assert.equal((await api("/flows/order-fulfillment/instances/ord-9001")).status, "open", "one click does nothing yet");
        await page.click("#cancel-instance");
        await page.waitForFunction(() => /cancel done/.test(document.getElementById("command-result").textContent));
        assert.equal((await api("/flows/order-fulfillment/instances/ord-9001")).status, "failed");
      });
    }

    if (SCREENSHOT) {
      await check("a screenshot of the overview is saved to " + SCREENSHOT, async () => {
        await go(page, "#/");
        await page.waitForSelector("section.flow svg");
        await page.mouse.move(0, 0); // no hover highlight in the picture
        mkdirSync(dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
      });
    }

    await check("no console errors, no dialogs, no request leaves the server", async () => {
      await page.waitForTimeout(300);
      assert.deepEqual(consoleErrors, []);
      assert.deepEqual(dialogs, [], "a dialog means a payload ran script");
      assert.deepEqual(foreign, []);
    });
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  failed++;
  console.log("FAIL the browser test could not run: " + (error && error.stack ? error.stack : error));
}
console.log("browser: " + passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
