// What every browser test shares: a guard that fails the test on any console error, page error or CSP
// violation; logging in with a single-use link printed by the real `gigmcp admin login-link`; an accessibility
// scan; the gateway's CLI and its data directory.
import { execFileSync } from "node:child_process";
import AxeBuilder from "@axe-core/playwright";
import { test as base, expect, type Page } from "@playwright/test";

export { expect };

const bin = process.env.GIGMCP_BIN ?? "";
const dataDir = process.env.GIG_E2E_DATA_DIR ?? "";
if (!bin || !dataDir || !process.env.GIG_E2E_URL) {
  throw new Error("run the browser tests with scripts/web-e2e.sh (make test-web): it starts the gateway they test");
}

/** Runs the gateway's CLI on the tested gateway's data directory; gives its standard output. */
export function gigmcp(...args: string[]): string {
  return execFileSync(bin, args, { env: { ...process.env, GIG_DATA_DIR: dataDir }, encoding: "utf8" });
}

export type Guard = {
  /** Console errors matching this are expected by the test (e.g. the browser's own line for a 401 or 409). */
  allow(pattern: RegExp): void;
};

export const test = base.extend<{ guard: Guard }>({
  guard: [
    async ({ page }, use) => {
      const problems: string[] = [];
      const allowed: RegExp[] = [];
      // Runs before the page's own scripts; a CSP violation is reported as an event even when the browser
      // does not log it.
      await page.addInitScript(() => {
        document.addEventListener("securitypolicyviolation", (e) => {
          console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`);
        });
      });
      page.on("console", (message) => {
        if (message.type() !== "error") return;
        const text = message.text();
        if (text.startsWith("CSP violation") || !allowed.some((re) => re.test(text))) problems.push(`console: ${text}`);
      });
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      await use({ allow: (re) => allowed.push(re) });
      expect(problems, "console errors, page errors or CSP violations").toEqual([]);
    },
    { auto: true },
  ],
});

/** Logs the browser in as `as` with `role` through a fresh single-use link; lands on the overview. */
export async function login(page: Page, as = "admin", role = "admin"): Promise<void> {
  const link = gigmcp("admin", "login-link", "--as", as, "--role", role).trim();
  const path = new URL(link).pathname;
  await page.goto(path);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
}

/** No serious or critical accessibility violation on the page as it is now. */
export async function a11y(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(bad, `accessibility of ${page.url()}`).toEqual([]);
}

/** Every text the page holds, visible or not, and every form field's value. */
export async function everythingIn(page: Page): Promise<string> {
  const values = await page.evaluate(() =>
    Array.from(document.querySelectorAll("input, textarea, select"))
      .map((e) => (e as HTMLInputElement).value)
      .join("\n"),
  );
  return (await page.content()) + "\n" + values;
}
