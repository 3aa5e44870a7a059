// The dashboard's browser tests: Playwright driving Debian's chromium (Playwright cannot download browsers on
// the build machines) against a real gateway that scripts/web-e2e.sh starts with a temporary data directory
// (GIG_E2E_URL, GIG_E2E_DATA_DIR, GIGMCP_BIN). One worker: the tests share that gateway and the machines have
// two cores. Run with `make test-web`.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  outputDir: "../target/e2e-results",
  use: {
    baseURL: process.env.GIG_E2E_URL,
    locale: "en-US",
    actionTimeout: 15_000,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
});
