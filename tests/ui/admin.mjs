// The admin UI end to end in Debian's Chromium (headless), driven by Playwright's library (no
// browser download). tests/ui_browser.rs starts the gateway and the mock upstreams, then runs
// this with:
//   SB_URL       the gateway, e.g. http://127.0.0.1:41234
//   SB_PASSWORD  the admin password the first visit chooses (the gateway starts with none)
//   SB_MOCK_B    a second mock upstream, added as a provider through the UI
//   SB_SHOTS     where screenshots go
// Every step checks what the page shows; any failure exits non-zero with the step's name.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const url = process.env.SB_URL;
const password = process.env.SB_PASSWORD;
const mockB = process.env.SB_MOCK_B;
const shots = process.env.SB_SHOTS;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-US" });
const page = await context.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Failed fetches are expected (the wrong password, a rejected form); anything else is not.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
});

let current = "";
async function step(name, body) {
  current = name;
  process.stdout.write(`ui: ${name} ... `);
  await body();
  console.log("ok");
}
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const row = (table, name) => page.locator(`#${table} tr[data-provider="${name}"]`);
async function expectText(locator, text, timeout = 5000) {
  await locator.filter({ hasText: text }).first().waitFor({ timeout });
}
async function api(method, path, token, body) {
  const r = await fetch(`${url}/api${path}`, {
    method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

try {
  await step("the first visit, with no admin password yet, chooses one and is logged in", async () => {
    await page.goto(`${url}/admin/`);
    await page.locator("#setup").waitFor();
    if (await page.locator("#password").count()) throw new Error("a login form for a password nobody set");
    await page.fill("#new-password", "short");
    await page.fill("#new-password-again", "short");
    await page.click("#setup button[type=submit]");
    await expectText(page.locator("#setup .error"), "At least 8");
    await page.fill("#new-password", password);
    await page.fill("#new-password-again", `${password}-typo`);
    await page.click("#setup button[type=submit]");
    await expectText(page.locator("#setup .error"), "differ");
    await shot("first-visit");
    await page.fill("#new-password-again", password);
    await page.click("#setup button[type=submit]");
    await page.locator('#dashboard[data-loaded="true"]').waitFor();
    await page.click("text=Log out");
    await page.locator("#password").waitFor();
  });

  await step("the login page refuses a wrong password", async () => {
    await page.goto(`${url}/admin/`);
    await page.fill("#password", "not-the-password");
    await page.click("button[type=submit]");
    await expectText(page.locator(".login .error"), "Wrong password");
  });

  await step("logging in opens the dashboard; the overview shows live state", async () => {
    await page.fill("#password", password);
    await page.click("button[type=submit]");
    await page.locator('#dashboard[data-loaded="true"]').waitFor();
    await page.click("button[data-page=overview]");
    await page.locator('#provider-status tr[data-provider="relay-a"][data-state="ok"]').waitFor();
    await expectText(page.locator("#summary-state"), "OK");
    await shot("overview");
  });

  await step("a provider failing turns its row to cooling without a reload", async () => {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    });
    if (r.status < 500) throw new Error(`expected the scripted 500 to fail the request, got ${r.status}`);
    await page.locator('#provider-status tr[data-provider="relay-a"][data-state="cooling"]').waitFor({ timeout: 3000 });
    await expectText(row("provider-status", "relay-a").locator(".reason"), "server error");
    await shot("overview-cooling");
    await page.click("text=Reset all breakers");
    await page.locator('#provider-status tr[data-provider="relay-a"][data-state="ok"]').waitFor({ timeout: 3000 });
  });

  await step("the Logs page shows a new request live, filters, opens its detail, exports", async () => {
    await page.click("button[data-page=logs]");
    const rows = page.locator("#logs tbody tr");
    await rows.first().waitFor();
    const before = await rows.count();
    // The mock's second scripted 500 may still be queued: the request after it succeeds.
    let status = 0;
    for (let i = 0; i < 3 && status !== 200; i++) {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi from the logs step" }] }),
      });
      status = r.status;
    }
    if (status !== 200) throw new Error(`the request failed: ${status}`);
    const sent = Date.now();
    await page.waitForFunction((n) => document.querySelectorAll("#logs tbody tr").length > n, before, { timeout: 2000 });
    console.log(`(live row after ${Date.now() - sent} ms) `);
    await expectText(rows.first().locator(".status"), "200");
    // It is the live tail (/api/logs/live) that brought it, not polling: quiet, the page asks
    // for no page of rows.
    let polls = 0;
    const countPolls = (r) => { if (new URL(r.url()).pathname === "/api/logs") polls++; };
    page.on("request", countPolls);
    await page.waitForTimeout(2500);
    page.off("request", countPolls);
    if (polls > 0) throw new Error(`the live table polled /api/logs ${polls} times in 2.5 s`);
    // Paused, the table stands still; resumed, it catches up.
    const chat = async (text) => {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: text }] }),
      });
      if (r.status !== 200) throw new Error(`the request failed: ${r.status}`);
    };
    await page.uncheck("#log-live");
    await page.waitForTimeout(300);
    const paused = await rows.count();
    await chat("while the table is paused");
    await page.waitForTimeout(1500);
    if ((await rows.count()) !== paused) throw new Error("a paused table took a new row");
    await page.check("#log-live");
    await page.waitForFunction((n) => document.querySelectorAll("#logs tbody tr").length > n, paused, { timeout: 2000 });
    await page.selectOption("#log-status", "5xx");
    await page.waitForFunction(() => {
      const s = [...document.querySelectorAll("#logs tbody tr .status")].map((e) => e.textContent);
      return s.length > 0 && s.every((t) => t.startsWith("5"));
    }, null, { timeout: 3000 });
    await rows.first().click();
    await page.locator("#log-detail").waitFor();
    await expectText(page.locator("#log-attempts tbody tr").first(), "relay-a");
    // Bodies are captured in this gateway: the request shows pretty-printed.
    await expectText(page.locator("#log-request-body"), '"messages": [');
    await shot("logs");
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: 5000 }),
      page.click("#log-export"),
    ]);
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    const csv = Buffer.concat(chunks).toString("utf8").trim().split("\n");
    if (!csv[0].includes("started_ms") || csv.length < 2) throw new Error(`the export: ${csv.join("\n")}`);
    if (csv.slice(1).some((l) => !/,5\d\d,/.test(l))) throw new Error(`the export is not filtered: ${csv.join("\n")}`);
    await page.selectOption("#log-status", "");
  });

  await step("the dashboard draws its charts from the traffic sent", async () => {
    // So far: the request that failed over to nothing (500s), then the Logs step's.
    await page.click("button[data-page=dashboard]");
    await page.locator('#dashboard[data-loaded="true"]').waitFor();
    await page.waitForFunction(() => Number(document.querySelector("#dash-requests .value")?.textContent) >= 2,
      null, { timeout: 5000 });
    // A line over the window's buckets (quiet ones are zeros); latency has points only
    // where there were requests, drawn as dots.
    const lineIn = (id, mark = "L") => page.waitForFunction(([id, mark]) =>
      [...document.querySelectorAll(`#${id} svg g._chartistry_line path`)]
        .some((p) => (p.getAttribute("d") || "").includes(mark)), [id, mark], { timeout: 5000 });
    await lineIn("chart-traffic");
    await lineIn("chart-latency", "M");
    await lineIn("chart-models");
    await lineIn("chart-providers");
    await page.locator("#chart-cost svg").waitFor();
    await expectText(page.locator("#chart-models ._chartistry_legend"), "gpt-4o");
    await expectText(page.locator("#chart-providers ._chartistry_legend"), "relay-a");
    const success = await page.locator("#dash-success .value").textContent();
    if (!/%$/.test(success) || success.startsWith("100")) throw new Error(`success rate with failures: ${success}`);
    await page.locator('#dash-health tr[data-pair="relay-a/gpt-4o"]').waitFor();
    // Beside the breaker, the score routing weighs the pair by, out of 100.
    await expectText(page.locator("#dash-health thead"), "Health score");
    const score = await page.locator('#dash-health tr[data-pair="relay-a/gpt-4o"] td.health-score').textContent();
    if (!/^\s*\d{1,3}\s*$/.test(score) || Number(score) < 1 || Number(score) > 100) {
      throw new Error(`health score: ${score}`);
    }
    await shot("dashboard");
    // Another window asks again and draws again.
    await page.click('#dash-window button[data-window="1h"]');
    await page.locator('#dash-window button.active[data-window="1h"]').waitFor();
    await lineIn("chart-traffic");
  });

  await step("the provider form checks fields before sending", async () => {
    await page.click("button[data-page=providers]");
    await page.fill("#provider-name", "relay-b");
    await page.fill("#provider-url", "ftp://nope");
    await page.click("#provider-save");
    await expectText(page.locator('[data-field="base_url"] .error'), "http://");
  });

  await step("adding a provider, then testing it fetches its models", async () => {
    await page.fill("#provider-url", `${mockB}/v1`);
    await page.fill("#provider-key", "sk-relay-b-secret-7777");
    await page.fill("#provider-weight", "2");
    await page.fill("#provider-priority", "1");
    await page.click("#provider-save");
    await row("providers", "relay-b").waitFor();
    await row("providers", "relay-b").locator("button.test").click();
    await expectText(page.locator(".notice.ok"), "3 models");
    // relay-a has chat completions only (responses = false): shown, and only there.
    await expectText(row("providers", "relay-a").locator(".badge.chat-only"), "chat only");
    if (await row("providers", "relay-b").locator(".badge.chat-only").count() !== 0) {
      throw new Error("relay-b is not chat-only");
    }
    await shot("providers");
  });

  await step("a regex rule previews its provider models before saving", async () => {
    await page.click("button[data-page=models]");
    await page.fill("#model-name", "claude-opus-4-5");
    await page.selectOption(".rule-type >> nth=0", "regex");
    await page.locator(".rule input").first().fill("^claude-opus-4[-.]5");
    await expectText(page.locator("#preview-count"), "3 provider models match");
    for (const pair of ["relay-a/claude-opus-4-5", "relay-b/claude-opus-4.5", "relay-b/claude-opus-4-5-20251101"]) {
      await expectText(page.locator("#preview li"), pair);
    }
    await shot("models-preview");
  });

  await step("the server's error for a bad regex shows beside the rules", async () => {
    await page.locator(".rule input").first().fill("^claude-opus-4[");
    await expectText(page.locator("#preview-error"), "regex");
    await page.click("#model-save");
    await expectText(page.locator('[data-field="rules"] .error'), "regex");
  });

  await step("the fixed model saves, with the strategy chosen", async () => {
    await page.locator(".rule input").first().fill("^claude-opus-4[-.]5");
    await page.selectOption("#model-strategy", "latency");
    await page.click("#model-save");
    await page.locator('#models tr[data-model="claude-opus-4-5"]').waitFor();
    const token = await page.evaluate(() => sessionStorage.getItem("switchboard.token"));
    const models = await api("GET", "/models", token);
    const saved = models.find((m) => m.name === "claude-opus-4-5");
    if (saved.strategy !== "latency") throw new Error(`strategy saved as ${saved.strategy}`);
    const providers = await api("GET", "/providers", token);
    const b = providers.find((p) => p.name === "relay-b");
    if (b.priority !== 1) throw new Error(`relay-b's priority saved as ${b.priority}`);
  });

  await step("trying a request shows where it would go, sending nothing", async () => {
    await page.fill("#try-body", "not json");
    await page.click("#try-run");
    await expectText(page.locator("#try-result .error"), "JSON object");
    await page.fill("#try-body", '{"model": "claude-opus-4-5", "messages": [{"role": "user", "content": "hi"}]}');
    await page.click("#try-run");
    await expectText(page.locator("#try-route"), "claude-opus-4-5 · latency");
    const shares = await page.locator("#try-candidates td.share").allTextContents();
    const total = shares.reduce((n, t) => n + Number(t.replace("%", "").trim()), 0);
    if (shares.length < 2 || total < 98 || total > 102) throw new Error(`shares: ${shares}`);
    await shot("try-request");
  });

  await step("a tiered model saves from its JSON, and the try panel shows the tier it takes", async () => {
    await page.fill("#model-name", "smart");
    await page.fill("#model-tiers", "{\"tiers\": 3}");
    await page.click("#model-save");
    await expectText(page.locator('[data-field="tiers"] .error'), "tiers");
    await page.fill("#model-tiers", JSON.stringify({
      classifier: { default: "T1" },
      tiers: [
        { name: "T3", target: "claude-opus-4-5", keywords: ["refactor"] },
        { name: "T1", target: "gpt-4o" },
      ],
    }));
    await page.click("#model-save");
    await expectText(page.locator('#models tr[data-model="smart"]'), "tier T3 → claude-opus-4-5");
    await page.fill("#try-body", '{"model": "smart", "messages": [{"role": "user", "content": "refactor this"}]}');
    await page.click("#try-run");
    await expectText(page.locator("#try-tier"), "T3 → claude-opus-4-5 · keyword");
    await expectText(page.locator("#try-route"), "claude-opus-4-5 · latency");
    // One real request, for the dashboard's table of tiers.
    await fetch(`${url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "smart", messages: [{ role: "user", content: "hello" }] }),
    });
    await page.click("button[data-page=dashboard]");
    await expectText(page.locator("#dash-tiers tr"), "T1", 10000);
    await shot("dashboard-tiers");
    await page.click("button[data-page=models]");
  });

  await step("a group of filters previews what passes, and saves", async () => {
    await page.fill("#model-name", "opus-group");
    await page.fill("#model-group", '{"pattern": "claude-opus-4*"}');
    await expectText(page.locator("#preview-count"), "3 provider models match");
    await page.click("#model-save");
    await expectText(page.locator('#models tr[data-model="opus-group"]'), "group:");
    await page.locator('#groups tr[data-group="opus-group"]').waitFor();
  });

  await step("the groups and what each holds are listed", async () => {
    await page.locator('#groups tr[data-group="auto:fast"]').waitFor();
    await expectText(page.locator('#groups tr[data-group="auto:fast"] .members'), "relay-");
  });

  await step("what if replays the logged requests through another strategy", async () => {
    await page.selectOption("#whatif-strategy", "cost");
    await page.fill("#whatif-days", "1");
    await page.click("#whatif-run");
    await page.locator('#whatif-table tr[data-model="(all)"]').waitFor();
    await expectText(page.locator("#whatif-count"), "cost");
    await shot("whatif");
  });

  await step("pausing a provider shows at once, and a resume from elsewhere arrives live", async () => {
    await page.click("button[data-page=overview]");
    await row("provider-status", "relay-b").locator("button.pause").click();
    await page.locator('#provider-status tr[data-provider="relay-b"][data-state="paused"]').waitFor({ timeout: 3000 });
    await shot("overview-paused");
    const login = await fetch(`${url}/api/login`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ password }),
    });
    const { token } = await login.json();
    await api("POST", "/providers/relay-b/resume", token);
    await page.locator('#provider-status tr[data-provider="relay-b"][data-state="ok"]').waitFor({ timeout: 3000 });
  });

  await step("a client key is shown once, with its limit and expiry", async () => {
    await page.click("button[data-page=keys]");
    await page.fill("#key-name", "cursor");
    await page.fill("#key-rpm", "zero");
    await page.click("#key-create");
    await expectText(page.locator('[data-field="rpm"] .error'), "above 0");
    await page.fill("#key-rpm", "30");
    await page.fill("#key-expires", "next week");
    await page.click("#key-create");
    await expectText(page.locator('[data-field="expires_at"] .error'), "YYYY-MM-DD");
    await page.fill("#key-expires", "2099-01-01");
    await page.check("#key-pin");
    await page.fill("#key-budget", "lots");
    await page.click("#key-create");
    await expectText(page.locator('[data-field="budget"] .error'), "USD");
    await page.fill("#key-budget", "5");
    await page.click("#key-create");
    const key = await page.locator("#created-key code").textContent();
    if (!/^sk-sb-[A-Za-z0-9_-]{20,}$/.test(key.trim())) throw new Error(`unexpected key ${key}`);
    const row = page.locator('#client-keys tr[data-key="cursor"]');
    await row.waitFor();
    await expectText(row.locator(".limit"), "30/min");
    await expectText(row.locator(".expires"), "2099-01-01");
    await expectText(row.locator(".last-used"), "Never");
    await expectText(row.locator(".pin"), "Yes");
    await expectText(row.locator(".budget"), "daily_usd $0.00 / $5");
    await shot("keys");
  });

  await step("a model without a price gets one, and a provider a multiplier", async () => {
    await page.click("button[data-page=prices]");
    await expectText(page.locator("#price-list"), "bundled");
    const unpriced = page.locator('#unpriced tr[data-pair="relay-a/house-model"]');
    await unpriced.waitFor();
    if (await page.locator('#unpriced tr[data-pair="relay-a/gpt-4o"]').count()) {
      throw new Error("gpt-4o is in the bundled list, yet listed as unpriced");
    }
    await unpriced.locator("button.set-price").click();
    if ((await page.inputValue("#price-model")) !== "house-model") throw new Error("the form was not filled");
    await page.fill("#price-input", "cheap");
    await page.click("#price-save");
    await expectText(page.locator('[data-field="input"] .error'), "number");
    // The server's own check: an own price needs an output price.
    await page.fill("#price-input", "1.5");
    await page.click("#price-save");
    await expectText(page.locator('[data-field="output"] .error'), "output price");
    await page.fill("#price-output", "6");
    await page.click("#price-save");
    await page.locator('#price-entries tr[data-entry="relay-a/house-model"]').waitFor();
    await unpriced.waitFor({ state: "detached", timeout: 5000 });
    await expectText(page.locator("#all-priced"), "has a price");
    await page.fill("#price-provider", "relay-a");
    await page.fill("#price-multiplier", "0.5");
    await page.click("#price-save");
    await expectText(page.locator('#price-entries tr[data-entry="relay-a/"] .multiplier'), "× 0.5");
    await shot("prices");
  });

  await step("model capabilities: what each routed model takes, and an entry over it", async () => {
    const gpt = page.locator('#capabilities tr[data-pair="relay-a/gpt-4o"]');
    await gpt.waitFor();
    await expectText(gpt.locator(".tools"), "Yes");
    await expectText(gpt.locator(".vision"), "Yes");
    const house = page.locator('#capabilities tr[data-pair="relay-a/house-model"]');
    await expectText(house.locator(".vision"), "Unknown");
    await page.fill("#caps-model", "house-model");
    await page.fill("#caps-context", "none");
    await page.click("#caps-save");
    await expectText(page.locator('#caps-form [data-field="context_window"] .error'), "above 0");
    await page.fill("#caps-context", "8000");
    await page.selectOption("#caps-vision", "no");
    await page.click("#caps-save");
    await page.locator('#capability-entries tr[data-entry="/house-model"]').waitFor();
    await expectText(house.locator(".vision"), "No");
    await expectText(house.locator(".context"), "8000");
    await shot("capabilities");
  });

  await step("settings validate ranges and save", async () => {
    await page.click("button[data-page=settings]");
    await page.locator("#routing\\.first_byte_timeout_s").waitFor();
    await page.waitForFunction(() => document.querySelector("#server\\.port").value !== "");
    await page.fill("#routing\\.first_byte_timeout_s", "0");
    await page.click("#settings-save");
    await expectText(page.locator('[data-field="routing.first_byte_timeout_s"] .error'), "1–3600");
    await page.fill("#routing\\.first_byte_timeout_s", "30");
    // Global default parameters: JSON, checked before sending.
    await page.fill("#routing\\.default_params", "max_tokens: 4096");
    await page.click("#settings-save");
    await expectText(page.locator('[data-field="routing.default_params"] .error'), "JSON object");
    await page.fill("#routing\\.default_params", '{"max_tokens": 4096}');
    await page.fill("#admin\\.session_ttl_s", "7200");
    await page.click("#settings-save");
    await page.locator(".notice.ok", { hasText: /^Saved$/ }).waitFor({ timeout: 5000 });
    const fieldErrors = await page.locator("#settings-form .error").allTextContents();
    if (fieldErrors.some((t) => t.trim())) throw new Error(`errors shown: ${fieldErrors}`);
    // The admin section reached the server, not only the form.
    const token = await page.evaluate(() => sessionStorage.getItem("switchboard.token"));
    const saved = await (
      await fetch(`${url}/api/settings`, { headers: { authorization: `Bearer ${token}` } })
    ).json();
    if (saved.session_ttl_s !== 7200 || saved.max_failed_logins !== 5 || saved.default_params.max_tokens !== 4096) {
      throw new Error(`settings on the server: ${JSON.stringify(saved)}`);
    }
    // Export: a config file with what was just saved, and no provider key.
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: 5000 }),
      page.click("#settings-export"),
    ]);
    if (download.suggestedFilename() !== "switchboard.toml") {
      throw new Error(`downloaded ${download.suggestedFilename()}`);
    }
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    const exported = Buffer.concat(chunks).toString("utf8");
    for (const want of ["session_ttl_s = 7200", 'name = "relay-b"', "[[client_keys]]", "max_tokens = 4096"]) {
      if (!exported.includes(want)) throw new Error(`the export lacks ${want}:\n${exported}`);
    }
    if (/sk-relay-[ab]-secret/.test(exported)) throw new Error(`a key in the export:\n${exported}`);
    await shot("settings");
  });

  await step("renaming a provider in its form keeps its key", async () => {
    await page.click("button[data-page=providers]");
    await row("providers", "relay-b").locator("button.edit").click();
    await page.fill("#provider-name", "relay-a");
    await page.click("#provider-save");
    await expectText(page.locator('[data-field="name"] .error'), "exists");
    await page.fill("#provider-name", "relay-c");
    await page.click("#provider-save");
    await row("providers", "relay-c").waitFor();
    if (await row("providers", "relay-b").count()) throw new Error("relay-b is still listed");
    await expectText(row("providers", "relay-c").locator(".key"), "7777");
  });

  await step("the Clients page connects Claude Code, then puts its file back", async () => {
    await page.click("button[data-page=clients]");
    const claude = page.locator('#agent-clients tr[data-client="claude-code"]');
    await expectText(claude.locator(".state"), "Not connected");
    await claude.locator("button").click();
    await page.locator('#agent-clients tr[data-client="claude-code"][data-connected="true"]').waitFor();
    await expectText(page.locator("#client-change"), "now points at Switchboard");
    await expectText(page.locator("#client-change code"), "claude-code");
    // The one-token test request, in Claude Code's protocol, to the Claude model an earlier step made.
    await expectText(page.locator('#client-test[data-ok="true"]'), "Test request: claude-opus-4-5 answered in");
    await shot("clients");
    await page.locator('#agent-clients tr[data-client="claude-code"] button').click();
    await page.locator('#agent-clients tr[data-client="claude-code"][data-connected="false"]').waitFor();
    await expectText(page.locator("#client-change"), "restored from its backup");
  });

  await step("简体中文 is one click away and remembered", async () => {
    await page.selectOption("header select.lang", "zh-CN");
    await expectText(page.locator("button[data-page=overview]"), "概览");
    await page.reload();
    await expectText(page.locator("button[data-page=overview]"), "概览");
    await page.click("button[data-page=overview]");
    await page.locator('#provider-status tr[data-provider="relay-a"]').waitFor();
    await expectText(page.locator("#provider-status th"), "状态");
    await shot("overview-zh");
  });

  await step("the page follows the OS dark theme", async () => {
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (light === dark) throw new Error(`the background stayed ${light}`);
    await page.selectOption("header select.lang", "en");
    await shot("overview-dark");
  });

  await step("log out ends the session on the server too", async () => {
    const pageToken = await page.evaluate(() => sessionStorage.getItem("switchboard.token"));
    if (!pageToken) throw new Error("the page holds no token");
    const statusWith = async (t) =>
      (await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${t}` } })).status;
    if ((await statusWith(pageToken)) !== 200) throw new Error("the page's token is not live");
    await page.click("header button.link");
    await page.locator("#password").waitFor();
    let status = 0;
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = await statusWith(pageToken);
      if (status !== 401) await page.waitForTimeout(100);
    }
    if (status !== 401) throw new Error(`the page's token still answers ${status} after logout`);
  });

  if (problems.length) throw new Error(problems.join("\n"));
  console.log("ui: all steps passed");
} catch (e) {
  console.log("FAILED");
  console.error(`ui step failed: ${current}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join("\n"));
  await shot("failure").catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
