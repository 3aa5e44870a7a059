// The benchmark's Node upstream: an MCP server on stdio written with the official TypeScript SDK's low-level
// `Server` API (the SDK pinned in tests/deps), with one tool, `echo`, that returns its `message`.
import { Server } from "../../tests/deps/node_modules/@modelcontextprotocol/sdk/dist/esm/server/index.js";
import { StdioServerTransport } from "../../tests/deps/node_modules/@modelcontextprotocol/sdk/dist/esm/server/stdio.js";
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
} from "../../tests/deps/node_modules/@modelcontextprotocol/sdk/dist/esm/types.js";

const server = new Server({ name: "bench-node-echo", version: "1.0.0" }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    {
      name: "echo",
      description: "Returns the message it is given.",
      inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
    },
  ],
}));
server.setRequestHandler(CallToolRequestSchema, async (request) => ({
  content: [{ type: "text", text: String(request.params.arguments?.message ?? "") }],
}));
await server.connect(new StdioServerTransport());
