#!/usr/bin/env python3
"""Server->client requests reach the client whose call caused them.

Opens two sessions (A and B) to the same profile, both able to answer sampling. While both
are connected, A and then B call server-everything's trigger-sampling-request, and then (with
--concurrent) both call it at the same time. Each sampling request must reach only the session
whose tool call caused it, and each tool result must carry that session's own canned answer.

Usage:
  sampling_routing.py --url URL --token TOKEN [--prefix-everything P] [--concurrent]
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import anyio
import mcp.types as types

from _common import Results, base_parser, connect, exposed, log, run_main, setup_logging, text_of


class Sampler:
    def __init__(self, name: str) -> None:
        self.name = name
        self.prompts: list[str] = []

    async def __call__(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        parts = []
        for m in params.messages:
            content = m.content if isinstance(m.content, list) else [m.content]
            parts.extend(c.text for c in content if getattr(c, "type", None) == "text")
        text = " ".join(parts)
        self.prompts.append(text)
        log(f"session {self.name} got sampling request: {text!r}")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"answer from {self.name}"),
            model="gigmcp-test-model",
            stop_reason="endTurn",
        )


async def routing(args: Any, r: Results) -> None:
    run = uuid.uuid4().hex[:8]
    tool = exposed(args.prefix_everything, "trigger-sampling-request")
    a, b = Sampler("A"), Sampler("B")
    async with connect(args, sampling_callback=a) as client_a, connect(args, sampling_callback=b) as client_b:
        clients = {"A": (client_a, a), "B": (client_b, b)}

        async def call(name: str, marker: str) -> str:
            client, _ = clients[name]
            res = await client.call_tool(tool, {"prompt": marker, "maxTokens": 16})
            return text_of(res)

        for name in ("A", "B"):
            marker = f"{name}-alone-{run}"
            text = await call(name, marker)
            r.check(f"{name}_alone_answer", f"answer from {name}" in text, text)
        if args.concurrent:
            results: dict[str, str] = {}

            async def both(name: str) -> None:
                results[name] = await call(name, f"{name}-together-{run}")

            async with anyio.create_task_group() as tg:
                tg.start_soon(both, "A")
                tg.start_soon(both, "B")
            for name in ("A", "B"):
                r.check(f"{name}_together_answer", f"answer from {name}" in results[name], results[name])
        expected = 2 if args.concurrent else 1
        for name, (_, sampler) in clients.items():
            foreign = [p for p in sampler.prompts if f"{name}-" not in p]
            r.check(f"{name}_only_own_requests", not foreign and len(sampler.prompts) == expected, sampler.prompts)


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="also let both sessions trigger sampling at the same time (needs an upstream session per client)",
    )
    args = parser.parse_args()
    setup_logging(args.verbose)
    r = Results(script="sampling_routing")
    return anyio.run(run_main, r, args.timeout, lambda: routing(args, r))


if __name__ == "__main__":
    sys.exit(main())
