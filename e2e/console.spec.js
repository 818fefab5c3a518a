// The operator console in a real browser: logging in, every page passing
// axe (no serious or critical violation), pausing a consumer, the live
// tail, a lineage, an order's saga, the projections, a dry run on the
// Replays page, and a bulk re-drive of 1,000 dead letters. Screenshots of
// each page go to artifacts/.
"use strict";
const { test, expect } = require("@playwright/test");
const fs = require("fs");

const TOKEN = "ui-test-token";
const CONTROL = "http://127.0.0.1:12526";
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(report, `axe on ${name}`).toEqual([]);
}

async function shot(page, name) {
  await page.screenshot({ path: `artifacts/${name}.png`, fullPage: true });
}

async function login(page) {
  await page.goto("/console/");
  await expect(page).toHaveURL(/\/console\/login/);
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
}

async function signUps(request, prefix, n, parallel) {
  let next = 0;
  async function worker() {
    for (let i = next++; i < n; i = next++) {
      const r = await request.post("/api/v1/users", {
        data: { username: `${prefix}${i}`, email: `${prefix}${i}@example.com`, password: "correct horse battery" },
      });
      expect(r.status(), await r.text()).toBe(201);
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function metric(request, series) {
  const body = await (await request.get("/metrics")).text();
  const line = body.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

test.describe.configure({ mode: "serial" });

test("login page and overview", async ({ page }) => {
  await page.goto("/console/login");
  await axe(page, "login");
  await shot(page, "login");
  await page.getByLabel("Admin token").fill("wrong");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText("not the admin token");
  await login(page);
  await expect(page.getByText("ready", { exact: true })).toBeVisible();
  await axe(page, "overview");
  await shot(page, "overview");
  await page.getByRole("link", { name: "Lake", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Lake" })).toBeVisible();
  await expect(page.getByText("Exported through")).toBeVisible();
  await axe(page, "lake");
  await shot(page, "lake");
});

test("pause and resume a consumer", async ({ page }) => {
  await login(page);
  await page.getByRole("link", { name: "Consumers" }).click();
  const row = page.getByRole("row", { name: /mail_activation_email/ });
  await row.getByLabel("Why pause mail_activation_email").fill("e2e maintenance");
  await row.getByRole("button", { name: "Pause mail_activation_email" }).click();
  await expect(row.getByRole("button", { name: "Resume mail_activation_email" })).toBeVisible();
  await axe(page, "consumers");
  await shot(page, "consumers-paused");
  await row.getByRole("button", { name: "Resume mail_activation_email" }).click();
  await expect(row.getByRole("button", { name: "Pause mail_activation_email" })).toBeVisible();
});

test("live tail, lookup and lineage", async ({ page, request }) => {
  await login(page);
  await page.getByRole("link", { name: "Events" }).click();
  await page.getByLabel("Subject filter").fill("events.>");
  await page.getByRole("button", { name: "Start" }).click();
  await expect(page.getByRole("status")).toContainText("Tailing events.>");
  await signUps(request, "tail", 1, 1);
  const live = page.locator("#tail-rows tr");
  await expect(live.filter({ hasText: "users.account_created.v1" })).toHaveCount(1);
  await expect(live.filter({ hasText: "mail.activation_email_sent.v1" })).toHaveCount(1);
  await axe(page, "events");
  await shot(page, "events-tail");
  await page.getByRole("button", { name: "Stop" }).click();

  await live.filter({ hasText: "mail.activation_email_sent.v1" }).getByRole("link").click();
  await expect(page.getByRole("heading", { level: 1, name: "Lineage" })).toBeVisible();
  await expect(page.locator("ul.tree")).toContainText("users.activation_requested.v1");
  await axe(page, "lineage");
  await shot(page, "lineage");

  await page.getByRole("link", { name: "Events" }).click();
  await page.getByLabel("By").selectOption("key");
  await page.getByLabel("Value").fill("no-such-key");
  await page.getByRole("button", { name: "Find" }).click();
  await expect(page.getByRole("heading", { name: "0 found" })).toBeVisible();
});

test("an order's saga", async ({ page, request }) => {
  const eur = (amount) => ({ amount, currency: "EUR" });
  const c = await request.post("/api/v1/customers", { data: { name: "Ada", credit_limit: eur(10000) } });
  expect(c.status(), await c.text()).toBe(201);
  const customer = (await c.json()).id;
  const it = await request.post("/api/v1/inventory/items", { data: { sku: "e2e-apple", name: "Apple", unit_price: eur(150), on_hand: 10 } });
  expect(it.status(), await it.text()).toBe(201);
  // The orders module learns the item from inventory's event.
  let order;
  await expect.poll(async () => {
    const r = await request.post("/api/v1/orders", { data: { customer_id: customer, lines: [{ sku: "e2e-apple", quantity: 2 }] } });
    if (r.status() === 201) order = (await r.json()).id;
    return r.status();
  }, { timeout: 30 * 1000 }).toBe(201);
  await expect.poll(async () => (await (await request.get(`/api/v1/orders/${order}`)).json()).status, { timeout: 30 * 1000 }).toBe("approved");

  await login(page);
  await page.getByRole("link", { name: "Sagas" }).click();
  await page.getByLabel("Type").selectOption("orders_fulfilment");
  await page.getByLabel("Status").selectOption("completed");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByRole("link", { name: order })).toBeVisible();
  await axe(page, "sagas");
  await shot(page, "sagas");
  await page.getByRole("link", { name: order }).click();
  await expect(page.locator("#saga-status")).toHaveText("completed");
  await expect(page.getByRole("table", { name: /Each step/ })).toContainText("payments.payment_authorized.v1");
  await axe(page, "saga");
  await shot(page, "saga");
});

test("projections and replays", async ({ page, request }) => {
  const admin = { Authorization: `Bearer ${TOKEN}` };
  // Every projection this build declares goes live once built and verified.
  await expect.poll(async () => {
    const r = await request.get("/api/v1/admin/projections", { headers: admin });
    const ps = (await r.json()).projections;
    return ps.length > 0 && ps.every((p) => p.live_version !== null && p.live_version === p.this_build_version);
  }, { timeout: 60 * 1000 }).toBe(true);

  await login(page);
  await page.getByRole("link", { name: "Projections" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Projections" })).toBeVisible();
  const stock = page.locator('section[data-projection="reporting_stock"]');
  await expect(stock).toContainText("Live version");
  await expect(stock.getByRole("table", { name: "Versions of reporting_stock" })).toContainText("live");
  await axe(page, "projections");
  await shot(page, "projections");

  // A dry run of the mail consumer over the sign-ups the lake holds (one
  // more, so that there is one when this test runs alone).
  await signUps(request, "replayed", 1, 1);
  let run;
  await expect.poll(async () => {
    const r = await request.post("/api/v1/admin/replays", { headers: admin, data: { consumer: "mail_activation_email", mode: "dry_run" } });
    expect(r.status(), await r.text()).toBe(202);
    const id = (await r.json()).id;
    await expect.poll(async () => {
      run = await (await request.get(`/api/v1/admin/replays/${id}`, { headers: admin })).json();
      return run.status;
    }, { timeout: 60 * 1000 }).not.toBe("running");
    return run.effects;
  }, { timeout: 60 * 1000, intervals: [1000] }).toBeGreaterThan(0);

  await page.getByRole("link", { name: "Replays" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Replays" })).toBeVisible();
  const row = page.locator(`tr[data-run="${run.id}"]`);
  await expect(row).toContainText("mail_activation_email");
  await expect(row).toContainText("done");
  await axe(page, "replays");
  await shot(page, "replays");
  await row.getByRole("link", { name: run.id }).click();
  await expect(page.locator("#run-status")).toHaveText("done");
  await expect(page.getByRole("table", { name: /Effects the dry run recorded/ }).locator("tbody tr")).toHaveCount(Math.min(run.effects, 100));
  await axe(page, "replay");
  await shot(page, "replay");
});

test("bulk re-drive of 1,000 dead letters", async ({ page, request }) => {
  test.setTimeout(15 * 60 * 1000);
  const dead = 'cairn_consumer_dead_letters{consumer="mail_activation_email"}';
  expect(await metric(request, dead)).toBe(0);
  await request.post(`${CONTROL}/mode/refuse`);
  await signUps(request, "bulk", 1000, 6);
  await expect.poll(() => metric(request, dead), { timeout: 10 * 60 * 1000, intervals: [2000] }).toBe(1000);

  await login(page);
  await page.getByRole("link", { name: "Dead letters" }).click();
  await page.getByLabel("Error contains").fill("no such mailbox");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.locator("#dl-count")).toContainText("1000 dead letters match");
  await axe(page, "dead-letters");
  await shot(page, "dead-letters");

  await page.getByRole("link").filter({ hasText: /UTC$/ }).first().click();
  await expect(page.getByRole("heading", { level: 1, name: "Dead letter" })).toBeVisible();
  await expect(page.locator("pre")).toContainText("users.activation_requested.v1");
  await axe(page, "dead-letter");
  await shot(page, "dead-letter");
  await page.goBack();

  await page.getByRole("button", { name: "Retry all 1000…" }).click();
  await expect(page.locator("#confirm-count")).toHaveText("1000");
  await axe(page, "confirm");
  await shot(page, "confirm");
  // One more is parked after the confirmation: the re-drive must leave it.
  await signUps(request, "late", 1, 1);
  await expect.poll(() => metric(request, dead), { timeout: 60 * 1000, intervals: [1000] }).toBe(1001);
  await request.post(`${CONTROL}/mode/accept`);
  await page.getByRole("button", { name: "Retry 1000" }).click();
  await expect(page.locator("#results-summary")).toHaveText("1000 delivered.", { timeout: 10 * 60 * 1000 });
  await expect(page.locator("tr.outcome-delivered")).toHaveCount(1000);
  await axe(page, "results");
  await shot(page, "results");
  await expect.poll(() => metric(request, dead), { timeout: 60 * 1000, intervals: [1000] }).toBe(1);
});
