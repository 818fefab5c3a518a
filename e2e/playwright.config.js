// Browser tests of the operator console (make test-ui): Cairn as `cairn
// serve` runs it, with its embedded PostgreSQL and NATS in a fresh data
// directory, mail going to a fake SMTP server, driven in Debian's Chromium.
"use strict";
const { defineConfig } = require("@playwright/test");

const port = 18089;
module.exports = defineConfig({
  testDir: ".",
  testMatch: /.*\.spec\.js/,
  timeout: 5 * 60 * 1000,
  workers: 1,
  reporter: [["list"]],
  outputDir: "artifacts/results",
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: "chromium",
    // Axe is injected with page.evaluate; the console's CSP allows only its
    // own scripts, which is what the pages themselves run under.
    launchOptions: {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"],
    },
    screenshot: "only-on-failure",
    trace: "off",
  },
  webServer: [
    {
      command: "node smtp-server.js",
      url: "http://127.0.0.1:12526/",
      reuseExistingServer: false,
      timeout: 10 * 1000,
    },
    {
      command: "rm -rf .data && mkdir -p artifacts && ../bin/cairn serve 2> artifacts/cairn.log",
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 180 * 1000,
      stdout: "ignore",
      stderr: "ignore",
      env: {
        CAIRN_HTTP_ADDR: `127.0.0.1:${port}`,
        CAIRN_DATA_DIR: ".data",
        CAIRN_NATS_LISTEN: "127.0.0.1:14229",
        CAIRN_ADMIN_TOKEN: "ui-test-token",
        CAIRN_PUBLIC_URL: `http://127.0.0.1:${port}`,
        CAIRN_SMTP_URL: "smtp://127.0.0.1:12525?tls=none",
        CAIRN_LOG_LEVEL: "warn",
      },
    },
  ],
});
