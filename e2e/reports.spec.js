// The reports page in a real browser: daily sales and stock drawn as
// charts from the reporting module's projections, the figures those of
// the report endpoints, refreshed live without a reload when another order
// arrives, passing axe. The screenshot goes to artifacts/reports.png.
"use strict";
const { test, expect } = require("@playwright/test");
const fs = require("fs");

const TOKEN = "ui-test-token";
const SKU = "e2e-report-plum";
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const report = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(report, `axe on ${name}`).toEqual([]);
}

async function order(request, customer, quantity) {
  let id;
  // The orders module learns the item from inventory's event.
  await expect.poll(async () => {
    const r = await request.post("/api/v1/orders", { data: { customer_id: customer, lines: [{ sku: SKU, quantity }] } });
    if (r.status() === 201) id = (await r.json()).id;
    return r.status();
  }, { timeout: 30 * 1000 }).toBe(201);
  await expect.poll(async () => (await (await request.get(`/api/v1/orders/${id}`)).json()).status, { timeout: 30 * 1000 }).toBe("approved");
}

async function stockOf(request) {
  const r = await request.get("/api/v1/reports/stock");
  if (r.status() !== 200) return null;
  return (await r.json()).items.find((it) => it.sku === SKU) || null;
}

test("the reports page draws sales and stock and refreshes live", async ({ page, request }) => {
  const eur = (amount) => ({ amount, currency: "EUR" });
  const c = await request.post("/api/v1/customers", { data: { name: "Grace", credit_limit: eur(100000) } });
  expect(c.status(), await c.text()).toBe(201);
  const customer = (await c.json()).id;
  const it = await request.post("/api/v1/inventory/items", { data: { sku: SKU, name: "Plum", unit_price: eur(70), on_hand: 40 } });
  expect(it.status(), await it.text()).toBe(201);
  await order(request, customer, 4);
  await expect.poll(async () => (await stockOf(request))?.units_sold, { timeout: 60 * 1000 }).toBe(4);

  await page.goto("/console/reports");
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Reports" })).toBeVisible();
  await expect(page.getByRole("img", { name: /Orders per day/ })).toBeVisible();
  await expect(page.getByRole("img", { name: /Amount approved per day, EUR/ })).toBeVisible();
  await expect(page.getByRole("img", { name: /Stock per SKU/ })).toBeVisible();

  // The page's figures are the endpoints'.
  const row = page.locator(`#stock-table tr[data-sku="${SKU}"]`);
  const want = await stockOf(request);
  await expect(row).toHaveAttribute("data-units-on-hand", String(want.on_hand));
  await expect(row).toHaveAttribute("data-reserved", String(want.reserved));
  await expect(row).toHaveAttribute("data-available", String(want.available));
  await expect(row).toHaveAttribute("data-sold", "4");
  const sales = (await (await request.get("/api/v1/reports/sales/daily?currency=EUR")).json()).days;
  const today = sales[sales.length - 1];
  const day = page.locator(`#sales-table tr[data-day="${today.day}"][data-currency="EUR"]`);
  await expect(day).toHaveAttribute("data-amount", String(today.approved_amount));

  // Another order shows without a reload, the tables left open.
  await page.getByText(/^Daily sales as a table/).click();
  await page.getByText(/^Stock as a table/).click();
  await page.evaluate(() => { window.notReloaded = true; });
  await order(request, customer, 3);
  await expect(row).toHaveAttribute("data-sold", "7", { timeout: 30 * 1000 });
  await expect(row).toHaveAttribute("data-units-on-hand", String(40 - 7));
  expect(await page.evaluate(() => window.notReloaded)).toBe(true);
  await expect(page.locator("#stock-table")).toBeVisible();
  await expect(page.getByRole("img", { name: /Stock per SKU/ }).locator("title", { hasText: `${SKU}, on hand: 33` })).toHaveCount(1);

  await axe(page, "reports");
  await page.screenshot({ path: "artifacts/reports.png", fullPage: true });
});
