// The dashboard's benchmark (make bench): the initial JavaScript of the first page (gzip), the time from
// navigation to the overview's data on screen (p50 of 20 loads), and the time to the first page of the audit
// log holding 100,000 events (p50 of 20 loads). Starts its own gateway (loopback, temporary data directory),
// drives Debian's chromium, prints a Markdown section on stdout. Targets (not asserted: reported):
// ≤ 200 KB, ≤ 300 ms, ≤ 500 ms.
//
//   node bench/dashboard.mjs --gigmcp ../target/release/gigmcp [--loads 20] [--events 100000]

import { get as httpGet } from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const bin = args.gigmcp;
const loads = Number(args.loads ?? 20);
const events = Number(args.events ?? 100_000);
if (!bin) {
  console.error("usage: node bench/dashboard.mjs --gigmcp <gigmcp binary> [--loads 20] [--events 100000]");
  process.exit(2);
}

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const data = mkdtempSync(join(tmpdir(), "gigmcp-dashboard-bench."));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const env = { ...process.env, GIG_DATA_DIR: data, GIG_LISTEN: `127.0.0.1:${port}`, RUST_LOG: "warn" };
const start = () => spawn(bin, ["serve", "--dev"], { env, stdio: "ignore" });
let gateway = start();
const stop = async () => {
  if (gateway.exitCode !== null) return;
  const exited = new Promise((r) => gateway.once("exit", r));
  gateway.kill("SIGTERM");
  await exited;
};
const healthy = async () => {
  for (let i = 0; i < 480; i++) {
    try {
      if ((await fetch(`${base}/api/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error("the gateway did not answer /api/health");
};

let browser;
try {
  await healthy();

  // 1. The first page's JavaScript: the entry script and the modules it preloads, as served, gzip -9.
  const html = await (await fetch(`${base}/`, { headers: { accept: "text/html" } })).text();
  const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g), ...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"/g)].map((m) => m[1]);
  const styles = [...html.matchAll(/<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"/g)].map((m) => m[1]);
  // The bytes the gateway sends a browser that takes gzip (its build-time copy); a gateway without one: gzip -9 here.
  const gz = (path) =>
    new Promise((resolve, reject) => {
      httpGet(base + path, { headers: { "accept-encoding": "gzip" } }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const raw = Buffer.concat(chunks);
          resolve(res.headers["content-encoding"] === "gzip" ? raw.length : gzipSync(raw, { level: 9 }).length);
        });
      }).on("error", reject);
    });
  let js = 0;
  for (const s of scripts) js += await gz(s);
  let css = 0;
  for (const s of styles) css += await gz(s);

  const login = async (page) => {
    const link = execFileSync(bin, ["admin", "login-link"], { env, encoding: "utf8" }).trim();
    await page.goto(link);
    await page.waitForURL(`${base}/`);
  };
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
  const timed = async (page, path, shown) => {
    const times = [];
    for (let i = 0; i < loads; i++) {
      const t0 = performance.now();
      await page.goto(path);
      await page.waitForFunction(shown, undefined, { polling: "raf", timeout: 30_000 });
      times.push(performance.now() - t0);
    }
    return times;
  };

  // 2. The overview: navigation to its four counts shown.
  const context = await browser.newContext({ baseURL: base });
  const page = await context.newPage();
  await login(page);
  const overview = await timed(page, "/", () => {
    const values = [...document.querySelectorAll(".stat .value")];
    return values.length === 4 && values.every((v) => v.textContent !== "…");
  });

  // 3. The audit log with `events` events (written into the database with the gateway stopped, and marked as
  //    forwarded to the audit sinks so that the gateway does not spend the run delivering them).
  await stop();
  // Python's sqlite3 module: present wherever the tests run, unlike the sqlite3 command.
  const sql = (statements) =>
    execFileSync(
      "python3",
      ["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); r = c.executescript(sys.argv[2]) if sys.argv[3] == 'run' else print(c.execute(sys.argv[2]).fetchone()[0]); c.commit()", join(data, "gigmcp.db"), statements.sql, statements.mode],
      { encoding: "utf8" },
    ).trim();
  sql({
    mode: "run",
    sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${events})
     INSERT INTO audit_events (time_ms, kind, actor, profile, server, outcome, detail)
     SELECT CAST(strftime('%s','now') AS INTEGER) * 1000 - i * 1000, 'mcp.tool_call', 'profile:demo', 'demo', 'echo',
            CASE WHEN i % 10 = 0 THEN 'deny' ELSE 'ok' END,
            json_object('tool', 'echo_echo', 'duration_ms', 1.5, 'arguments', json_object('message', 'string'))
     FROM n;
     INSERT INTO audit_forwarding (id, delivered_through) VALUES (1, (SELECT max(id) FROM audit_events))
       ON CONFLICT (id) DO UPDATE SET delivered_through = excluded.delivered_through;`,
  });
  gateway = start();
  await healthy();
  await login(page);
  const audit = await timed(page, "/audit", () => document.querySelectorAll("tbody tr").length > 1);
  const count = sql({ mode: "query", sql: "SELECT count(*) FROM audit_events" });

  const kb = (n) => (n / 1024).toFixed(1);
  const ms = (n) => n.toFixed(0);
  const verdict = (ok) => (ok ? "met" : "**missed**");
  console.log(`## Dashboard

Method: \`web/bench/dashboard.mjs\` against the gateway binary given (\`make bench\`: the release build), on
loopback with a temporary data directory, Debian's chromium (headless). Initial JavaScript: the entry script
and the modules \`index.html\` preloads, the bytes the gateway sends a browser that takes gzip (its build-time
gzip -9 copies). Load times: from \`page.goto\` to the data on screen (the overview's four counts; the audit
log's first rows), logged in, ${loads} loads each, p50 (min–max).

| measure | result | target | |
|---|---|---|---|
| initial JavaScript of the first page (gzip) | ${kb(js)} KB in ${scripts.length} files (+ ${kb(css)} KB CSS) | ≤ 200 KB | ${verdict(js <= 200 * 1024)} |
| navigation → overview's data shown | ${ms(p50(overview))} ms (${ms(Math.min(...overview))}–${ms(Math.max(...overview))}) | ≤ 300 ms | ${verdict(p50(overview) <= 300)} |
| navigation → audit log's first page, ${count} events | ${ms(p50(audit))} ms (${ms(Math.min(...audit))}–${ms(Math.max(...audit))}) | ≤ 500 ms | ${verdict(p50(audit) <= 500)} |
`);
} finally {
  await browser?.close();
  await stop();
  rmSync(data, { recursive: true, force: true });
}
