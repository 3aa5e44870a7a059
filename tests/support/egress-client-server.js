// A stdio MCP server for the egress tests (no dependencies; newline-delimited JSON-RPC). It runs HTTP
// clients inside its own jail, which reach the world only through the gateway's egress proxy.
// Tools:
//   fetch {client: "curl"|"node"|"python", url, headers?: {name: value}, save?: bool}  (`${VAR}` in a value
//       is replaced by the server's environment variable VAR)
//       runs the client against url; returns {status, body, headers (response), stderr} (curl: also
//       http_version, "2" when it spoke HTTP/2 inside the tunnel); with save, the body
//       is also written to a file under /tmp (so that the test can scan the jail's writable files)
//   tunnels {count, host}  opens `count` CONNECT tunnels to the proxy at once (without TLS) and returns the
//       status line each got, then closes them all
//   run {argv}  runs a command in the jail; returns its exit status, signal, stdout and stderr
//   env {}   returns the names of the environment variables the server has
"use strict";
const readline = require("readline");
const { spawnSync } = require("child_process");
const net = require("net");
const fs = require("fs");

const NODE22 = process.env.EGRESS_TEST_NODE22;
let saved = 0;

function send(message) {
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
}

const NODE_CLIENT = `
const [url, headers] = [process.argv[1], JSON.parse(process.argv[2])];
fetch(url, { headers }).then(async (r) => {
  const h = {}; r.headers.forEach((v, k) => { h[k] = v; });
  console.log(JSON.stringify({ status: r.status, headers: h, body: await r.text() }));
}).catch((e) => { console.log(JSON.stringify({ status: 0, error: String(e && (e.cause || e)) })); });
`;

const PYTHON_CLIENT = `
import json, sys, urllib.request, urllib.error
url, headers = sys.argv[1], json.loads(sys.argv[2])
try:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        print(json.dumps({"status": r.status, "headers": dict(r.headers), "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "headers": dict(e.headers), "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"status": 0, "error": repr(e)}))
`;

function runClient(client, url, headers) {
  let cmd, args;
  if (client === "curl") {
    cmd = "curl";
    args = ["-sS", "--max-time", "30", "-D", "/tmp/curl-headers.txt", "-w", "\n%{http_code} %{http_version}", url];
    for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  } else if (client === "node") {
    cmd = NODE22;
    args = ["-e", NODE_CLIENT, url, JSON.stringify(headers)];
  } else if (client === "python") {
    cmd = "python3";
    args = ["-c", PYTHON_CLIENT, url, JSON.stringify(headers)];
  } else {
    return { status: 0, error: `unknown client ${client}` };
  }
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60000, maxBuffer: 64 * 1024 * 1024 });
  if (client === "curl") {
    const out = r.stdout || "";
    const cut = out.lastIndexOf("\n");
    let received = "";
    try {
      received = fs.readFileSync("/tmp/curl-headers.txt", "utf8");
      fs.unlinkSync("/tmp/curl-headers.txt");
    } catch {}
    const [code, version] = out.slice(cut + 1).split(" ");
    return {
      status: Number(code) || 0,
      http_version: version,
      body: out.slice(0, cut),
      received_headers: received,
      stderr: r.stderr,
      exit: r.status,
      signal: r.signal,
      error: r.error && String(r.error),
    };
  }
  try {
    return { ...JSON.parse(r.stdout), stderr: r.stderr };
  } catch {
    return { status: 0, error: String(r.error || "the client printed no result"), signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }
}

function tunnels(count, host) {
  const proxy = new URL(process.env.HTTPS_PROXY);
  return new Promise((resolve) => {
    const sockets = [];
    const lines = [];
    let pending = count;
    // One after the other, so that which one hits the cap is deterministic.
    const next = () => {
      if (pending === 0) {
        sockets.forEach((s) => s.destroy());
        return resolve(lines);
      }
      pending -= 1;
      const s = net.connect(Number(proxy.port), proxy.hostname);
      sockets.push(s);
      let got = "";
      s.on("connect", () => s.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`));
      s.on("data", (d) => {
        got += d.toString();
        if (got.includes("\r\n") && !s.done) {
          s.done = true;
          lines.push(got.split("\r\n")[0]);
          next();
        }
      });
      s.on("error", (e) => {
        if (!s.done) {
          s.done = true;
          lines.push("error " + e.code);
          next();
        }
      });
    };
    next();
  });
}

async function callTool(id, name, args) {
  const text = (v) => send({ id, result: { content: [{ type: "text", text: JSON.stringify(v) }] } });
  switch (name) {
    case "fetch": {
      // `${VAR}` in a header value is the server's own environment variable (a credential's placeholder).
      const headers = {};
      for (const [k, v] of Object.entries(args.headers || {})) {
        headers[k] = String(v).replace(/\$\{(\w+)\}/g, (_, n) => process.env[n] || "");
      }
      const out = runClient(args.client, args.url, headers);
      if (args.save) {
        saved += 1;
        fs.writeFileSync(`/tmp/response-${saved}.txt`, JSON.stringify(out));
      }
      return text(out);
    }
    case "tunnels":
      return text(await tunnels(args.count, args.host));
    case "run": {
      const r = spawnSync(args.argv[0], args.argv.slice(1), { encoding: "utf8", timeout: 60000 });
      return text({ exit: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, error: r.error && String(r.error) });
    }
    case "env":
      return text(Object.keys(process.env).sort());
    default:
      return send({ id, error: { code: -32602, message: `unknown tool ${name}` } });
  }
}

const tools = ["fetch", "tunnels", "run", "env"].map((name) => ({ name, inputSchema: { type: "object" } }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return send({ id: null, error: { code: -32700, message: "parse error" } });
  }
  if (msg.id === undefined || !msg.method) return;
  const p = msg.params || {};
  switch (msg.method) {
    case "initialize":
      return send({
        id: msg.id,
        result: { protocolVersion: p.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "egress-client", version: "1" } },
      });
    case "tools/list":
      return send({ id: msg.id, result: { tools } });
    case "tools/call":
      return callTool(msg.id, p.name, p.arguments || {});
    case "ping":
      return send({ id: msg.id, result: {} });
    default:
      return send({ id: msg.id, error: { code: -32601, message: "method not found" } });
  }
});
