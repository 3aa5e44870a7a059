// A screenshot tour: one full-page PNG per page, light and dark, in target/dashboard-screenshots/ for a person
// to look at, and an accessibility scan of every page in both themes.
import { a11y, expect, login, test } from "./fixtures";

const PAGES: [string, string][] = [
  ["overview", "/"],
  ["profiles", "/profiles"],
  ["profile", "/profiles/demo"],
  ["servers", "/servers"],
  ["server-new", "/servers/new"],
  ["server", "/servers/echo"],
  ["catalog", "/catalog"],
  ["catalog-entry", "/catalog/taskboard"],
  ["credentials", "/credentials"],
  ["connections", "/connections"],
  ["plugins", "/plugins"],
  ["plugin", "/plugins/tool-filter"],
  ["webhooks", "/webhooks"],
  ["audit", "/audit"],
  ["users", "/users"],
  ["account", "/account"],
];

for (const scheme of ["light", "dark"] as const) {
  test(`every page in the ${scheme} theme: no accessibility violation, a screenshot`, async ({ page }) => {
    test.setTimeout(180_000);
    await page.emulateMedia({ colorScheme: scheme });
    await login(page);
    // A call through the demo profile, so the echo server's page has a log to show.
    const origin = new URL(page.url()).origin;
    const called = await page.request.post("/api/profiles/demo/tools/call", {
      data: { name: "echo_echo", arguments: { message: "tour" } },
      headers: { Origin: origin },
    });
    expect(called.status()).toBe(200);
    // An OAuth app, so the connected accounts page has a vendor to connect.
    const app = await page.request.put("/api/oauth/apps/demo", {
      data: {
        authorize_url: "https://auth.example.test/authorize",
        token_url: "https://auth.example.test/token",
        client_id: "gigmcp-demo",
        client_secret: "demo-client-secret",
        scopes: ["profile"],
        pkce: false,
        params: {},
      },
      headers: { Origin: origin },
    });
    expect([200, 201]).toContain(app.status());
    for (const [name, path] of PAGES) {
      await page.goto(path);
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
      await expect(page.getByText("Loading…")).toHaveCount(0);
      if (name === "server") await expect(page.getByRole("log").getByText(/: ready/).first()).toBeVisible();
      if (name === "connections")
        await expect(page.getByRole("region", { name: "Your accounts" }).getByRole("link", { name: "Connect demo" })).toHaveAttribute(
          "href",
          "/api/connections/demo/start?return_to=%2Fconnections",
        );
      // The tour's own call is in the gateway's per-minute counts.
      if (name === "overview") await expect(page.getByRole("img", { name: /^Tool calls per minute over the last hour: [1-9]/ })).toBeVisible();
      await a11y(page);
      await page.screenshot({ path: `../target/dashboard-screenshots/${name}-${scheme}.png`, fullPage: true });
    }
  });

  test(`the login page in the ${scheme} theme, as someone without a session sees it`, async ({ page, guard }) => {
    // The browser logs the 401 of the session probe itself.
    guard.allow(/status of 401/);
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto("/login");
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
    await a11y(page);
    await page.screenshot({ path: `../target/dashboard-screenshots/login-${scheme}.png`, fullPage: true });
  });
}
