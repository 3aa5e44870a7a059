"""The benchmark's Python upstream: an MCP server on stdio written with the official Python SDK's low-level
`Server` API (the SDK pinned in tests/deps/requirements.txt), with one tool, `echo`, that returns its `message`."""

import glob
import os
import sys

# The SDK pinned for the tests (.test-deps/venv), run on the system's Python, as the gateway runs PyPI servers:
# inside a sandbox only /usr and the mounted paths exist.
_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = glob.glob(os.path.join(_root, ".test-deps/venv/lib/python3*/site-packages"))

import anyio  # noqa: E402
import mcp.types as types  # noqa: E402
from mcp.server.lowlevel import Server  # noqa: E402
from mcp.server.stdio import stdio_server  # noqa: E402


async def list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name="echo",
                description="Returns the message it is given.",
                input_schema={"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
            )
        ]
    )


async def call_tool(ctx, params) -> types.CallToolResult:
    message = str((params.arguments or {}).get("message", ""))
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)])


server = Server("bench-python-echo", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
