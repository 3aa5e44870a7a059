// What people do with the dashboard, end to end against the real gateway: real sandboxes, real plugins, the
// real audit log, a real MCP client (the official Python SDK). The journeys build on each other (one gateway,
// run in order): a server, a profile with it, a credential, a policy plugin that denies its tool.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { Connection } from "../src/api/client";
import { a11y, everythingIn, expect, gigmcp, login, test } from "./fixtures";

test.describe.configure({ mode: "serial" });

const component = (name: string) => `../target/plugins/wasm32-wasip2/release/${name}.wasm`;
/** The tool the profile exposes once the server below is in it (prefix = the server's name). */
const TOOL = "echo-e2e_echo";

test("a logged-out visitor is sent to the login page, which says how to get a link; the link leads to the checklist", async ({
  page,
  guard,
}) => {
  // The browser logs the 401 of the session probe itself.
  guard.allow(/status of 401/);
  await page.goto("/servers");
  await expect(page).toHaveURL(/\/login\?return_to=%2Fservers$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await expect(page.getByText("gigmcp admin login-link", { exact: true })).toBeVisible();
  await expect(page.getByRole("button", { name: /identity provider/ })).toHaveCount(0);
  await a11y(page);

  await login(page);
  const checklist = page.getByRole("region", { name: "Getting started" });
  await expect(checklist).toBeVisible();
  await expect(checklist.getByText("Add an MCP server")).toBeVisible();
  await expect(checklist.getByText("Connect an MCP client to the profile")).toBeVisible();
});

test("an admin adds the built-in echo server from the form", async ({ page }) => {
  await login(page);
  await page.goto("/servers/new");
  await page.getByLabel("Name", { exact: true }).fill("echo-e2e");
  await page.getByRole("tab", { name: "Built-in" }).click();
  await expect(page.getByLabel("Built-in server")).toHaveValue("echo");
  await page.getByRole("button", { name: "Add server" }).click();
  await expect(page).toHaveURL(/\/servers\/echo-e2e$/);
  await expect(page.getByRole("heading", { level: 1, name: "echo-e2e" })).toBeVisible();
  await page.goto("/servers");
  await expect(page.getByRole("link", { name: "echo-e2e" })).toBeVisible();
});

test("an admin adds an npm server: the install shows its elapsed time and ends pinned", async ({ page }) => {
  test.setTimeout(240_000);
  await login(page);
  await page.goto("/servers/new");
  await page.getByLabel("Name", { exact: true }).fill("memory-e2e");
  await page.getByRole("tab", { name: "npm" }).click();
  await page.getByLabel("npm package").fill("@modelcontextprotocol/server-memory@2026.8.31");
  await page.getByRole("button", { name: "Add server" }).click();
  await expect(page.getByRole("status").filter({ hasText: /Installing and starting: \d+ s/ })).toBeVisible();
  await expect(page).toHaveURL(/\/servers\/memory-e2e$/, { timeout: 200_000 });
  // Installed at the exact version asked for, run from its install directory.
  await expect(page.getByText(/memory-e2e@2026\.8\.31\/node_modules\/@modelcontextprotocol\/server-memory\//)).toBeVisible();
});

test("a profile is created, its token shown once, and a real MCP client calls a tool with it", async ({ page }) => {
  await login(page);
  await page.goto("/profiles");
  await page.getByRole("button", { name: "Create profile" }).click();
  await page.getByLabel("Slug").fill("e2e");
  await page.getByLabel("Display name").fill("End to end");
  await page.getByRole("button", { name: "Create", exact: true }).click();

  const dialog = page.getByTestId("token-dialog");
  await expect(dialog).toBeVisible();
  await a11y(page);
  const token = await dialog.getByLabel("Token", { exact: true }).inputValue();
  expect(token).toMatch(/^gig_[A-Za-z0-9_-]{20,}$/);
  const endpoint = await dialog.getByLabel("Endpoint", { exact: true }).inputValue();
  expect(endpoint).toMatch(/\/mcp\/p\/e2e$/);
  // The copy-ready snippet for Claude Code carries the endpoint and the token.
  await dialog.getByRole("tab", { name: "Claude Code" }).click();
  const claude = await dialog.getByRole("textbox", { name: "Claude Code", exact: true }).inputValue();
  expect(claude).toContain(`claude mcp add --transport http`);
  expect(claude).toContain(endpoint);
  expect(claude).toContain(`Authorization: Bearer ${token}`);
  // The tabs work from the keyboard: arrows move and select, End goes to the last.
  await page.keyboard.press("ArrowRight");
  await expect(dialog.getByRole("tab", { name: "Cursor" })).toBeFocused();
  await expect(dialog.getByRole("tab", { name: "Cursor" })).toHaveAttribute("aria-selected", "true");
  await page.keyboard.press("End");
  await expect(dialog.getByRole("tab", { name: "Generic JSON" })).toHaveAttribute("aria-selected", "true");
  await page.keyboard.press("ArrowRight");
  await expect(dialog.getByRole("tab", { name: "Claude Code" })).toHaveAttribute("aria-selected", "true");
  // Escape does not lose the token: only "Done" closes the dialog.
  await page.keyboard.press("Escape");
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Done" }).click();
  await expect(dialog).toBeHidden();
  expect(await everythingIn(page)).not.toContain(token);

  // The server goes into the profile.
  await page.goto("/profiles/e2e");
  await page.getByLabel("Add a server").selectOption("echo-e2e");
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.getByRole("button", { name: "Save servers" }).click();
  await expect(page.getByText("Servers saved.")).toBeVisible();

  // The official Python SDK, with the token the dialog showed.
  const out = execFileSync(
    process.env.GIGMCP_TEST_PYTHON ?? "python3",
    [
      `${process.env.GIGMCP_TEST_CLIENTS}/call_tools.py`,
      "--url",
      endpoint,
      "--token",
      token,
      "--calls",
      JSON.stringify([{ tool: TOOL, arguments: { message: "hello from the dashboard's token" } }]),
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  const results = JSON.parse(out).data?.results ?? JSON.parse(out).results;
  expect(results[0].text).toBe("hello from the dashboard's token");
  expect(results[0].is_error).toBe(false);

  // The server's page follows its log: the sandbox the call started, and what the server wrote on stderr.
  await page.goto("/servers/echo-e2e");
  const log = page.getByRole("log", { name: "Logs" });
  await expect(log.getByText(/^gigmcp-echo .*: ready/)).toBeVisible();
  await expect(log.getByText(/started: pid \d+/).first()).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Live" })).toBeVisible();
  await page.getByLabel("Profile", { exact: true }).selectOption("e2e");
  await expect(log.getByText(/^gigmcp-echo .*: ready/)).toBeVisible();
  // A restart stops the idle sandbox; the log says so as it happens.
  await page.getByRole("button", { name: "Restart" }).click();
  await expect(log.getByText(/stopped by the gateway/)).toBeVisible();
});

test("a credential's secret appears nowhere: not in the page, not in any response", async ({ page }) => {
  const secret = `sk-e2e-${randomBytes(16).toString("hex")}`;
  const bodies: string[] = [];
  page.on("response", async (response) => {
    try {
      bodies.push(`${response.url()}\n${await response.text()}`);
    } catch {
      // A redirect or a body the browser dropped: nothing to read.
    }
  });
  await login(page);
  await page.goto("/credentials");
  const form = page.getByRole("form", { name: "Set a credential" });
  await form.getByLabel("Server", { exact: true }).selectOption("echo-e2e");
  await form.getByLabel("Name", { exact: true }).fill("api-key");
  await form.getByLabel("Hosts").fill("api.example.com");
  await form.getByLabel("Secret").fill(secret);
  await form.getByRole("button", { name: "Save credential" }).click();
  await expect(page.getByText("Credential api-key saved for echo-e2e.")).toBeVisible();
  await expect(form.getByLabel("Secret")).toHaveValue("");
  const row = page.getByRole("row").filter({ hasText: "api-key" });
  await expect(row).toContainText("api.example.com");
  await expect(row).toContainText("gigph_");
  await page.reload();
  await expect(page.getByRole("row").filter({ hasText: "api-key" })).toBeVisible();
  expect(await everythingIn(page)).not.toContain(secret);
  expect(page.url()).not.toContain(secret);
  const leaked = bodies.filter((b) => b.includes(secret));
  expect(leaked, "responses holding the secret").toEqual([]);
  expect(bodies.length).toBeGreaterThan(3);
});

test("a plugin is uploaded with its pin, a bad configuration is refused at the field, a stale one with 412, a deny rule denies the playground's call, the audit links it to the plugin, and rollback lets it pass", async ({
  page,
  guard,
}) => {
  // The browser logs the refused stale save itself.
  guard.allow(/status of 412/);
  const file = component("tool_filter");
  expect(existsSync(file), `${file} (scripts/web-e2e.sh builds it)`).toBe(true);
  const sha = createHash("sha256").update(readFileSync(file)).digest("hex");
  await login(page);
  await page.goto("/plugins");
  const upload = page.getByRole("form", { name: "Upload a plugin" });
  await upload.getByLabel("Component file").setInputFiles(file);
  await expect(page.getByTestId("upload-sha256")).toHaveText(sha);
  await upload.getByLabel("Name", { exact: true }).fill("deny-e2e");
  await upload.getByLabel("Expected kind").selectOption("mcp-filter");
  await upload.getByRole("button", { name: "Upload" }).click();
  await expect(page).toHaveURL(/\/plugins\/deny-e2e$/);
  await expect(page.getByText(sha).first()).toBeVisible();

  // A configuration against the schema is refused at its field; nothing is saved.
  await page.getByRole("tab", { name: "Raw JSON" }).click();
  const editor = page.getByLabel("Configuration (JSON)");
  await editor.fill(JSON.stringify({ max_argument_bytes: -5 }));
  await expect(page.getByTestId("config-problems")).toContainText("max_argument_bytes");
  await expect(page.getByRole("button", { name: "Save as a new revision" })).toBeDisabled();
  // Someone else configures the plugin meanwhile: saving the draft made from the older revision is refused,
  // and the current configuration can be loaded instead.
  await editor.fill(JSON.stringify({ deny: ["stale/edit"] }));
  const meanwhile = await page.request.put("/api/plugins/deny-e2e/config", {
    data: { config: { max_argument_bytes: 4096 } },
    headers: { Origin: new URL(page.url()).origin },
  });
  expect(meanwhile.status()).toBe(200);
  await page.getByRole("button", { name: "Save as a new revision" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "changed since it was read" })).toBeVisible();
  await page.getByRole("button", { name: "Discard my change and load the current version" }).click();
  await expect(editor).toHaveValue(/"max_argument_bytes": 4096/);
  // A valid one shows its diff and saves as a new revision.
  await editor.fill(JSON.stringify({ deny: ["echo-e2e/echo"] }));
  await expect(page.getByTestId("config-problems")).toHaveCount(0);
  await expect(page.getByRole("region", { name: "Changes against the current revision" })).toContainText("echo-e2e/echo");
  // A dry run tries the draft before it is saved: denied with it, allowed with the current configuration.
  const dry = page.getByRole("region", { name: "Try it" });
  await dry
    .getByLabel("Input (JSON)")
    .fill(JSON.stringify({ server: "echo-e2e", method: "tools/call", name: "echo", params: { name: "echo", arguments: {} } }));
  await dry.getByRole("button", { name: "Run" }).click();
  await expect(dry.getByTestId("dry-run-result")).toContainText("Deny(");
  await expect(dry.getByTestId("dry-run-result")).toContainText("fuel");
  await dry.getByLabel("With the configuration being edited").uncheck();
  await dry.getByRole("button", { name: "Run" }).click();
  await expect(dry.getByTestId("dry-run-result")).toContainText("Allow");
  await page.getByRole("button", { name: "Save as a new revision" }).click();
  await expect(page.getByText("Configuration saved as a new revision.")).toBeVisible();
  // Bound to the profile only.
  await page.getByLabel("Scope").selectOption("e2e");
  await page.getByRole("button", { name: "Bind", exact: true }).click();
  await expect(page.getByText("Binding added.")).toBeVisible();

  // The playground calls the tool through the profile's pipeline: denied, naming the plugin.
  const callInPlayground = async () => {
    await page.goto("/profiles/e2e");
    await page.getByRole("button", { name: "List tools" }).click();
    await page.getByLabel("Tool", { exact: true }).fill(TOOL);
    await page.getByLabel("Arguments (JSON object)").fill(JSON.stringify({ message: "playground" }));
    await page.getByRole("button", { name: "Call tool" }).click();
    await expect(page.getByTestId("tool-result")).toBeVisible();
  };
  await expect(async () => {
    await callInPlayground();
    await expect(page.getByText("The call was refused or failed:")).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  const playground = page.getByRole("region", { name: "Try a tool" });
  // The refusal names the plugin that decided it.
  await expect(playground.locator(".alert.error").getByRole("link", { name: "deny-e2e" })).toBeVisible();
  await expect(page.getByTestId("tool-result")).toContainText("-32001");
  // The tool list says the policy hides it, and which plugin.
  const hiddenTools = page.getByTestId("hidden-tools");
  await expect(hiddenTools).toContainText(TOOL);
  await expect(hiddenTools.getByRole("link", { name: "deny-e2e" })).toBeVisible();

  // The audit page shows the denial, linked to the plugin that decided it; the filters are in the URL.
  await page.goto("/audit?kind=mcp.tool_call&profile=e2e&decision=deny");
  const denial = page.getByRole("row").filter({ hasText: TOOL }).first();
  await expect(denial).toBeVisible();
  await a11y(page);
  await denial.getByRole("link", { name: "deny-e2e" }).click();
  await expect(page).toHaveURL(/\/plugins\/deny-e2e$/);
  // The plugin's page charts the calls it denied (counted with the audit event, so already there).
  await expect(page.getByRole("img", { name: /over the last hour: [1-9]\d* calls?, [1-9]\d* denied/ })).toBeVisible();

  // Rollback: the previous revision is current again and the call passes.
  await page.getByRole("button", { name: "Roll back" }).click();
  await expect(page.getByText("Rolled back to the previous revision.")).toBeVisible();
  await expect(async () => {
    await callInPlayground();
    await expect(page.getByTestId("tool-result")).toContainText("playground", { timeout: 1000 });
    await expect(page.getByText("The call was refused or failed:")).toHaveCount(0);
  }).toPass({ timeout: 30_000 });
});

test("a component of the wrong world is refused clearly and nothing is listed", async ({ page, guard }) => {
  guard.allow(/status of 400/);
  const file = component("rogue_import");
  expect(existsSync(file), `${file} (scripts/web-e2e.sh builds it)`).toBe(true);
  await login(page);
  await page.goto("/plugins");
  const upload = page.getByRole("form", { name: "Upload a plugin" });
  await upload.getByLabel("Component file").setInputFiles(file);
  await expect(page.getByTestId("upload-sha256")).toHaveText(/^[0-9a-f]{64}$/);
  await upload.getByLabel("Name", { exact: true }).fill("rogue-e2e");
  await upload.getByRole("button", { name: "Upload" }).click();
  await expect(upload.getByText("The plugin was refused")).toBeVisible();
  await expect(upload).toContainText("rogue:spy/exfil");
  await page.reload();
  await expect(page.getByRole("heading", { level: 1, name: "Plugins" })).toBeVisible();
  await expect(page.getByRole("link", { name: "rogue-e2e" })).toHaveCount(0);
  expect(gigmcp("plugin", "list")).not.toContain("rogue-e2e");
});

test("a user sees only their own profiles and no admin pages", async ({ page, guard }) => {
  guard.allow(/status of 404/);
  await login(page, "carol", "user");
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Profiles" })).toBeVisible();
  for (const admin of ["Plugins", "Users", "Webhooks"]) {
    await expect(nav.getByRole("link", { name: admin })).toHaveCount(0);
  }
  await page.goto("/profiles");
  await expect(page.getByRole("heading", { level: 1, name: "Profiles" })).toBeVisible();
  await expect(page.getByRole("link", { name: "e2e" })).toHaveCount(0);
  await expect(page.getByRole("link", { name: "demo" })).toHaveCount(0);
  await page.goto("/profiles/e2e");
  await expect(page.getByText(/Page not found|no profile named/).first()).toBeVisible();
  await page.goto("/plugins");
  await expect(page.getByText("This page is for administrators.")).toBeVisible();
});

test("an admin views as a user: read-only, with a banner, until they stop", async ({ page, guard }) => {
  // The browser logs the refused change itself.
  guard.allow(/status of 403/);
  // Dana exists and has a profile of her own.
  await login(page, "dana", "user");
  await page.goto("/profiles");
  await page.getByRole("button", { name: "Create profile" }).click();
  await page.getByLabel("Slug").fill("danas");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await page.getByTestId("token-dialog").getByRole("button", { name: "Done" }).click();

  await login(page);
  await page.goto("/users");
  await page.getByRole("button", { name: /^View as dana/ }).click();
  await expect(page).toHaveURL(/\/$/);
  const banner = page.getByRole("region", { name: "Viewing as another user" });
  await expect(banner).toContainText("viewing as dana, read-only");
  await a11y(page);
  // What dana sees: her profile, not the admin's, and no admin pages.
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Users" })).toHaveCount(0);
  await page.goto("/profiles");
  await expect(page.getByRole("link", { name: "danas" })).toBeVisible();
  await expect(page.getByRole("link", { name: "e2e" })).toHaveCount(0);
  await page.screenshot({ path: "../target/dashboard-screenshots/view-as-light.png" });
  // A change is refused, saying why.
  await page.getByRole("button", { name: "Create profile" }).click();
  await page.getByLabel("Slug").fill("sneaky");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByText(/viewing as dana, read-only: stop viewing/).first()).toBeVisible();
  await page.keyboard.press("Escape");
  // Stopping returns to the admin's own view.
  await banner.getByRole("button", { name: "Stop viewing" }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expect(banner).toHaveCount(0);
  await expect(page.getByRole("heading", { level: 1, name: "Users" })).toBeVisible();
  await page.goto("/profiles");
  await expect(page.getByRole("link", { name: "sneaky" })).toHaveCount(0);
});

test("the plugin configuration form speaks the dashboard's language", async ({ page }) => {
  await login(page);
  await page.goto("/plugins/tool-filter");
  await page.getByLabel("Language").selectOption("de");
  await page.getByRole("tab", { name: "Formular" }).click();
  const form = page.locator(".rjsf");
  // The form's own words: a new entry of the per-profile rules gets a key field, labelled in German.
  await form.getByRole("button", { name: "Hinzufügen" }).last().click();
  await expect(form.getByText(/Schlüssel von/).first()).toBeVisible();
  await expect(form.getByText(/ Key$/)).toHaveCount(0);
  await a11y(page);
  await page.screenshot({ path: "../target/dashboard-screenshots/plugin-form-de-light.png", fullPage: true });
});

test("the signed catalog is browsed, an entry installed, its upgrade consented to, and a tool off by default turned on for a profile", async ({
  page,
}) => {
  await login(page);
  await page.goto("/catalog");
  await expect(page.getByRole("heading", { level: 1, name: "Catalog" })).toBeVisible();
  await expect(page.getByText(/Signed index from file:\/\/.*index\.json, generated .*: 8 entries\./)).toBeVisible();
  await page.getByLabel("Category").selectOption("support");
  await expect(page.getByRole("link", { name: "Helpdesk" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Taskboard" })).toHaveCount(0);
  await page.getByLabel("Category").selectOption("");
  await page.getByLabel("Search").fill("realtime");
  await a11y(page);
  await page.getByRole("link", { name: "PubSub <Realtime> & Co" }).click();
  await expect(page).toHaveURL(/\/catalog\/pubsub$/);
  const tools = page.getByRole("region", { name: "Tools" });
  await expect(tools.getByRole("row", { name: /publish_message off Publish a message on a channel\./ })).toBeVisible();

  // Install the older version, then upgrade: the runtime changed, so it waits for consent.
  await page.getByLabel("Server name").fill("pubsub-e2e");
  await page.getByLabel("Version").selectOption("1.4.2");
  await page.getByRole("button", { name: "Install" }).click();
  await expect(page).toHaveURL(/\/servers\/pubsub-e2e$/);
  await expect(page.getByText("catalog pubsub@1.4.2", { exact: true })).toBeVisible();
  await page.goto("/catalog/pubsub");
  await page.getByLabel("Server name").fill("pubsub-e2e");
  await page.getByRole("button", { name: "Install" }).click();
  await expect(page).toHaveURL(/\/servers\/pubsub-e2e$/);
  const waiting = page.getByRole("region", { name: "Waiting for consent" });
  await expect(waiting).toContainText("The upgrade to pubsub@1.5.0 changes what this server runs");
  await page.screenshot({ path: "../target/dashboard-screenshots/consent-light.png", fullPage: true });
  await waiting.getByRole("button", { name: "Consent and start" }).click();
  await expect(page.getByText(/Consented: version 1\.4\.2 → 1\.5\.0/)).toBeVisible();
  await expect(waiting).toHaveCount(0);

  // The tool off by default, turned on for one profile.
  gigmcp("profile", "create", "catalog-e2e");
  gigmcp("profile", "add-server", "catalog-e2e", "pubsub-e2e");
  await page.goto("/profiles/catalog-e2e");
  const switches = page.getByRole("region", { name: "Catalog tools" });
  const publish = switches.getByRole("checkbox", { name: "pubsub-e2e/publish_message" });
  await expect(publish).not.toBeChecked();
  await expect(switches.getByRole("checkbox", { name: "pubsub-e2e/list_channels" })).toBeChecked();
  await publish.click();
  await expect(publish).toBeChecked();
  await expect(switches.getByRole("button", { name: "Back to the default (off)" })).toBeVisible();
  expect(gigmcp("profile", "tools", "catalog-e2e")).toContain("on  pubsub-e2e/publish_message (switched for this profile)");
  await a11y(page);
  await page.screenshot({ path: "../target/dashboard-screenshots/tool-switches-light.png", fullPage: true });
});

test("an admin sets up an OAuth app, Connect starts the provider's flow, and a server that acts with an account says which and whether it is connected", async ({
  page,
  guard,
}) => {
  // The browser logs the refused app itself.
  guard.allow(/status of 400/);
  const secret = `cs-e2e-${randomBytes(16).toString("hex")}`;
  await login(page);
  const origin = new URL(page.url()).origin;
  // A catalog toolpack acting with a testidp account, installed before that vendor has an app.
  const installed = await page.request.post("/api/servers", {
    data: { name: "taskboard-e2e", catalog: "taskboard", per_session: false, args: [], env: {}, mounts: [], egress: [] },
    headers: { Origin: origin },
  });
  expect(installed.status()).toBe(201);
  await page.goto("/servers/taskboard-e2e");
  const account = page.getByRole("region", { name: "Connected account" });
  await expect(account).toContainText("This server acts with your testidp account.");
  await expect(account).toContainText("Not connected");
  await expect(account).toContainText("No OAuth app is set up for testidp yet");
  await expect(account.getByRole("link", { name: "Connect testidp" })).toHaveCount(0);

  await page.goto("/connections");
  await expect(page.getByRole("heading", { level: 1, name: "Connected accounts" })).toBeVisible();
  const mine = page.getByRole("region", { name: "Your accounts" });
  const operator = page.getByRole("region", { name: "Operator account (profiles without an owner)" });
  const apps = page.getByRole("region", { name: "OAuth apps" });
  await expect(mine).toContainText("No vendor has an OAuth app yet.");
  await expect(apps.getByRole("textbox", { name: "Redirect URI to register at the provider", exact: true })).toHaveValue(`${origin}/api/connections/callback`);

  // The app, from the form: a line that is not name=value is caught here, an http URL by the gateway.
  const form = page.getByRole("form", { name: /app$/ });
  await form.getByLabel("Vendor", { exact: true }).fill("testidp");
  await form.getByLabel("Client ID", { exact: true }).fill("gigmcp-e2e");
  await form.getByLabel("Authorization URL", { exact: true }).fill("https://auth.example.test/authorize");
  await form.getByLabel("Token URL", { exact: true }).fill("http://auth.example.test/token");
  await form.getByLabel("Client secret", { exact: true }).fill(secret);
  await form.getByLabel("Scopes", { exact: true }).fill("profile");
  await form.getByLabel("Extra authorization parameters").fill("audience");
  await expect(form.getByText("Not of the form name=value: audience")).toBeVisible();
  await expect(form.getByRole("button", { name: "Save app" })).toBeDisabled();
  await form.getByLabel("Extra authorization parameters").fill("audience=api.example.test");
  await form.getByRole("button", { name: "Save app" }).click();
  await expect(form.getByRole("alert").filter({ hasText: "The app was refused" })).toContainText("https");
  await expect(form.getByLabel("Client secret", { exact: true })).toHaveValue("");
  await form.getByLabel("Token URL", { exact: true }).fill("https://auth.example.test/token");
  await form.getByLabel("Client secret", { exact: true }).fill(secret);
  await form.getByRole("button", { name: "Save app" }).click();
  await expect(page.getByText("OAuth app testidp saved.")).toBeVisible();
  await expect(form.getByLabel("Client secret", { exact: true })).toHaveValue("");
  const appRow = apps.getByRole("row").filter({ hasText: "gigmcp-e2e" });
  await expect(appRow).toContainText("testidp");
  await expect(appRow).toContainText("Stored");

  // Each account's Connect goes to the gateway's start of the flow, returning here; the operator's says so.
  const row = mine.getByRole("row").filter({ hasText: "testidp" });
  await expect(row).toContainText("Not connected");
  await expect(row.getByRole("link", { name: "taskboard-e2e" })).toBeVisible();
  await expect(row.getByRole("link", { name: "Connect testidp" })).toHaveAttribute("href", "/api/connections/testidp/start?return_to=%2Fconnections");
  await expect(operator.getByRole("link", { name: "Connect testidp" })).toHaveAttribute(
    "href",
    "/api/connections/testidp/start?return_to=%2Fconnections&as=operator",
  );
  await a11y(page);
  await page.screenshot({ path: "../target/dashboard-screenshots/connections-app-light.png", fullPage: true });

  // Editing never shows the secret, and an empty secret field keeps it.
  await apps.getByRole("button", { name: "Edit the testidp app" }).click();
  await expect(page.getByRole("form", { name: "Change the testidp app" })).toBeVisible();
  await expect(form.getByLabel("Client ID", { exact: true })).toHaveValue("gigmcp-e2e");
  await expect(form.getByLabel("Client secret", { exact: true })).toHaveValue("");
  await expect(form.getByText("Leave empty to keep the stored secret.")).toBeVisible();
  await expect(form.getByLabel("Extra authorization parameters")).toHaveValue("audience=api.example.test");
  await form.getByLabel("Client ID", { exact: true }).fill("gigmcp-e2e-2");
  await form.getByRole("button", { name: "Save app" }).click();
  await expect(page.getByText("OAuth app testidp saved.").first()).toBeVisible();
  await expect(apps.getByRole("row").filter({ hasText: "gigmcp-e2e-2" })).toContainText("Stored");
  expect(await everythingIn(page)).not.toContain(secret);

  // Connect: the gateway sends the browser to the provider (answered here, no real login) with the app's
  // client, the callback, the server's scopes and the app's own, and the extra parameter.
  await page.route("https://auth.example.test/**", (route) =>
    route.fulfill({ status: 200, contentType: "text/plain", body: "the provider's login page" }),
  );
  await row.getByRole("link", { name: "Connect testidp" }).click();
  await page.waitForURL(/^https:\/\/auth\.example\.test\/authorize\?/);
  const asked = new URL(page.url());
  expect(asked.searchParams.get("client_id")).toBe("gigmcp-e2e-2");
  expect(asked.searchParams.get("redirect_uri")).toBe(`${origin}/api/connections/callback`);
  expect(asked.searchParams.get("response_type")).toBe("code");
  expect(asked.searchParams.get("state")).toBeTruthy();
  expect(asked.searchParams.get("scope")?.split(" ")).toEqual(expect.arrayContaining(["profile", "tasks:read", "tasks:write"]));
  expect(asked.searchParams.get("audience")).toBe("api.example.test");
  expect(page.url()).not.toContain(secret);

  // The server's page now offers to connect, coming back to it.
  await page.goto("/servers/taskboard-e2e");
  await expect(account).toContainText("Not connected");
  await expect(account.getByRole("link", { name: "Connect testidp" })).toHaveAttribute("href", "/api/connections/testidp/start?server=taskboard-e2e");
  await expect(account).not.toContainText("No OAuth app");
  await a11y(page);
  await page.screenshot({ path: "../target/dashboard-screenshots/server-account-light.png", fullPage: true });

  // A user sees their own accounts only: no operator's, no apps to manage.
  await login(page, "carol", "user");
  await page.goto("/connections");
  await expect(page.getByRole("region", { name: "Your accounts" }).getByRole("link", { name: "Connect testidp" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Operator account (profiles without an owner)" })).toHaveCount(0);
  await expect(page.getByRole("region", { name: "OAuth apps" })).toHaveCount(0);

  // Deleting the app: the server's page says again that there is none.
  await login(page);
  await page.goto("/connections");
  await apps.getByRole("button", { name: "Delete the testidp app" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByText("OAuth app testidp deleted.")).toBeVisible();
  await expect(mine).toContainText("No vendor has an OAuth app yet.");
  await page.goto("/servers/taskboard-e2e");
  await expect(account).toContainText("No OAuth app is set up for testidp yet");
});

test("connected accounts show their state: connected and refreshed, to reconnect and why, of a removed app; one is disconnected after confirming", async ({
  page,
}) => {
  await login(page);
  const origin = new URL(page.url()).origin;
  for (const vendor of ["demo", "acme"]) {
    const app = await page.request.put(`/api/oauth/apps/${vendor}`, {
      data: {
        authorize_url: `https://auth.example.test/${vendor}/authorize`,
        token_url: `https://auth.example.test/${vendor}/token`,
        client_id: `gigmcp-${vendor}`,
        client_secret: "e2e-client-secret",
        scopes: [],
        pkce: false,
        params: {},
      },
      headers: { Origin: origin },
    });
    expect([200, 201]).toContain(app.status());
  }
  // Connections need a provider's consent, out of reach here: the list the gateway would give is answered
  // by the test, in each state a connection can be in. The disconnect is answered too, and recorded.
  const now = Math.floor(Date.now() / 1000);
  let connections: Connection[] = [
    { vendor: "demo", owner: "1", scopes: ["profile", "tasks:read"], expires_at: now + 45 * 60, refreshable: true, state: "ok", detail: null, connected_at: now - 86_400, refreshed_at: now - 15 * 60 },
    { vendor: "acme", owner: "1", scopes: ["read"], expires_at: now - 3600, refreshable: false, state: "needs-reconnect", detail: "the provider refused the refresh token (invalid_grant)", connected_at: now - 7 * 86_400, refreshed_at: null },
    { vendor: "gone", owner: "1", scopes: ["files"], expires_at: now + 600, refreshable: true, state: "ok", detail: null, connected_at: now - 3 * 86_400, refreshed_at: null },
  ];
  const disconnected: string[] = [];
  await page.route(
    (url) => url.pathname === "/api/connections" && url.searchParams.get("owner") === "me",
    (route) => route.fulfill({ json: connections }),
  );
  await page.route(
    (url) => url.pathname.startsWith("/api/connections/") && !url.pathname.endsWith("/start"),
    (route) => {
      if (route.request().method() !== "DELETE") return route.fallback();
      const url = new URL(route.request().url());
      disconnected.push(url.pathname + url.search);
      connections = connections.filter((c) => `/api/connections/${c.vendor}` !== url.pathname);
      return route.fulfill({ status: 204 });
    },
  );
  await page.goto("/connections");
  const mine = page.getByRole("region", { name: "Your accounts" });

  const demo = mine.getByRole("row").filter({ hasText: "demo" });
  await expect(demo).toContainText("Connected");
  await expect(demo).toContainText("profile tasks:read");
  await expect(demo).toContainText("Expires in 45 minutes");
  await expect(demo).toContainText("Refreshed 15 minutes ago");
  await expect(demo.getByRole("link", { name: "Reconnect demo" })).toHaveAttribute("href", "/api/connections/demo/start?return_to=%2Fconnections");

  const acme = mine.getByRole("row").filter({ hasText: "acme" });
  await expect(acme).toContainText("Needs reconnecting");
  await expect(acme).toContainText("the provider refused the refresh token (invalid_grant)");
  await expect(acme).toContainText("Expired 1 hour ago");
  await expect(acme).toContainText("Connected 7 days ago");
  await expect(acme).toContainText("No refresh token");
  await expect(acme.getByRole("link", { name: "Reconnect acme" })).toBeVisible();

  const gone = mine.getByRole("row").filter({ hasText: "gone" });
  await expect(gone).toContainText("App removed");
  await expect(gone.getByRole("link")).toHaveCount(0);
  await expect(gone.getByRole("button", { name: "Disconnect gone" })).toBeVisible();
  await a11y(page);
  await page.screenshot({ path: "../target/dashboard-screenshots/connections-states-light.png", fullPage: true });

  // Disconnecting asks first, then the account is offered to connect again.
  await demo.getByRole("button", { name: "Disconnect demo" }).click();
  const dialog = page.getByRole("dialog", { name: "Disconnect demo?" });
  await expect(dialog).toContainText("revokes them at the provider");
  await dialog.getByRole("button", { name: "Disconnect" }).click();
  await expect(page.getByText("demo disconnected.")).toBeVisible();
  expect(disconnected).toEqual(["/api/connections/demo"]);
  await expect(demo).toContainText("Not connected");
  await expect(demo.getByRole("link", { name: "Connect demo" })).toBeVisible();

  const removed = await page.request.delete("/api/oauth/apps/acme", { headers: { Origin: origin } });
  expect(removed.status()).toBe(204);
});
