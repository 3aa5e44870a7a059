// A deterministic stdio MCP server for the gateway's tests (no dependencies; newline-delimited JSON-RPC).
// Tools:
//   log {level, message}  sends notifications/message at that level, then returns
//   update {uri}          sends notifications/resources/updated for uri, then returns
//   state {}              returns what the server saw: subscribe/unsubscribe calls and its log level
//   crash {}              writes a line to stderr and exits with status 3
"use strict";
const readline = require("readline");

const calls = [];
let logLevel = null;

function send(message) {
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
}

function result(id, value) {
  send({ id, result: value });
}

const tools = [
  { name: "log", inputSchema: { type: "object", properties: { level: { type: "string" }, message: { type: "string" } } } },
  { name: "update", inputSchema: { type: "object", properties: { uri: { type: "string" } } } },
  { name: "state", inputSchema: { type: "object" } },
  { name: "crash", inputSchema: { type: "object" } },
];

function callTool(id, name, args) {
  const text = (t) => result(id, { content: [{ type: "text", text: t }] });
  switch (name) {
    case "log":
      send({ method: "notifications/message", params: { level: args.level, data: args.message } });
      return text("logged");
    case "update":
      send({ method: "notifications/resources/updated", params: { uri: args.uri } });
      return text("updated");
    case "state":
      return text(JSON.stringify({ calls, logLevel }));
    case "crash":
      process.stderr.write("probe: crashing on request\n");
      return process.exit(3);
    default:
      return send({ id, error: { code: -32602, message: `unknown tool ${name}` } });
  }
}

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
      return result(msg.id, {
        protocolVersion: p.protocolVersion,
        capabilities: { tools: {}, logging: {}, resources: { subscribe: true } },
        serverInfo: { name: "probe", version: "1" },
      });
    case "tools/list":
      return result(msg.id, { tools });
    case "tools/call":
      return callTool(msg.id, p.name, p.arguments || {});
    case "resources/list":
      return result(msg.id, { resources: [{ uri: "probe://a", name: "a" }, { uri: "probe://b", name: "b" }] });
    case "resources/read":
      return result(msg.id, { contents: [{ uri: p.uri, text: "content of " + p.uri }] });
    case "resources/subscribe":
    case "resources/unsubscribe":
      calls.push(`${msg.method.split("/")[1]} ${p.uri}`);
      return result(msg.id, {});
    case "logging/setLevel":
      logLevel = p.level;
      return result(msg.id, {});
    case "ping":
      return result(msg.id, {});
    default:
      return send({ id: msg.id, error: { code: -32601, message: "method not found" } });
  }
});
