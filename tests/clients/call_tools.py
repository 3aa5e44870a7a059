#!/usr/bin/env python3
"""Runs a list of tool calls in one MCP session and prints every outcome.

Reads a JSON list of {"tool": NAME, "arguments": {...}} from --calls (a JSON string) and calls them in
order (after listing the tools, with --list-tools). Prints one JSON object: {"results": [{"tool", "text",
"is_error", "error"}...], "tools": [{"name", "inputSchema"}...]}. Exits 0 when the
session itself worked, whatever the calls returned: judging them is the caller's business.

Usage:
  call_tools.py --url URL --token TOKEN --calls '[{"tool": "probe_probe", "arguments": {"check": "env"}}]'
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from _common import Results, base_parser, connect, describe_exc, run_main, setup_logging, text_of


async def calls(args: Any, r: Results) -> None:
    plan = json.loads(args.calls)
    async with connect(args) as client:
        if args.list_tools:
            listed = await client.list_tools()
            r.data["tools"] = [{"name": t.name, "description": t.description, "inputSchema": getattr(t, "inputSchema", None) or getattr(t, "input_schema", None)} for t in listed.tools]
        out = [{"tool": call["tool"]} for call in plan]

        async def one(call: dict[str, Any], entry: dict[str, Any]) -> None:
            try:
                res = await client.call_tool(call["tool"], call.get("arguments") or {})
                entry["text"] = text_of(res)
                entry["is_error"] = bool(res.is_error)
            except Exception as e:  # noqa: BLE001 - a failed call is an outcome to report
                entry["error"] = describe_exc(e)

        if args.at_once:
            async with anyio.create_task_group() as group:
                for call, entry in zip(plan, out):
                    group.start_soon(one, call, entry)
        else:
            for call, entry in zip(plan, out):
                await one(call, entry)
    r.data["results"] = out
    r.check("session", True)


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--calls", required=True, help="JSON list of {tool, arguments}")
    parser.add_argument("--list-tools", action="store_true", help="also list the tools first (data.tools)")
    parser.add_argument("--at-once", action="store_true", help="send every call at once (results in plan order)")
    args = parser.parse_args()
    setup_logging(args.verbose)
    r = Results(script="call_tools")
    return anyio.run(run_main, r, args.timeout, lambda: calls(args, r))


if __name__ == "__main__":
    sys.exit(main())
