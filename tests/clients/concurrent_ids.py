#!/usr/bin/env python3
"""Concurrent sessions and requests: no response may reach the wrong caller.

Opens --sessions independent MCP sessions to the same URL at once; in each, calls the
echo tool --calls times concurrently, every message unique to its session and call, and
asserts every result is its own message. A gateway that shares one upstream process
between sessions must remap JSON-RPC ids per session, so any cross-talk shows up as a
mismatched echo.

Usage:
  concurrent_ids.py --url URL --token TOKEN [--sessions N] [--calls M]
                    [--prefix-echo P] [--no-echo --prefix-everything P]

  concurrent_ids.py --url URL --token TOKEN                          # 2 sessions x 50 calls
  concurrent_ids.py --url URL --token TOKEN --sessions 50 --calls 4  # many sessions

With --no-echo it calls server-everything's `echo` (which answers "Echo: <message>").
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import anyio

from _common import (
    HttpInfo,
    Results,
    base_parser,
    connect,
    describe_exc,
    echo_tool,
    log,
    run_main,
    setup_logging,
    text_of,
)


async def one_session(args, index: int, run_id: str, tool: str, expect, stats: dict[str, Any]) -> None:
    info = HttpInfo()
    mine: dict[str, Any] = {"calls": 0, "ok": 0, "mismatches": [], "errors": [], "session_ids": []}
    stats[index] = mine
    try:
        async with connect(args, http_info=info) as client:

            async def call(j: int) -> None:
                msg = f"session-{index}/call-{j}/{run_id}"
                try:
                    res = await client.call_tool(tool, {"message": msg})
                except Exception as e:  # noqa: BLE001 - counted as that call's failure
                    mine["errors"].append(f"call {j}: {describe_exc(e)}")
                    return
                mine["calls"] += 1
                got = text_of(res)
                if not res.is_error and got == expect(msg):
                    mine["ok"] += 1
                else:
                    mine["mismatches"].append({"sent": msg, "got": got, "is_error": res.is_error})

            async with anyio.create_task_group() as tg:
                for j in range(args.calls):
                    tg.start_soon(call, j)
    except Exception as e:  # noqa: BLE001 - a session that cannot open is that session's failure
        mine["errors"].append(f"session: {describe_exc(e)}")
    mine["session_ids"] = sorted(info.session_ids)


async def concurrent(args, r: Results) -> None:
    run_id = uuid.uuid4().hex[:8]
    tool, expect = echo_tool(args)
    stats: dict[int, dict[str, Any]] = {}
    log(f"{args.sessions} sessions x {args.calls} concurrent calls of {tool} on {args.url}")
    t0 = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(args.sessions):
            tg.start_soon(one_session, args, i, run_id, tool, expect, stats)
    elapsed = time.monotonic() - t0

    total = args.sessions * args.calls
    ok = sum(s["ok"] for s in stats.values())
    mismatches = [m for s in stats.values() for m in s["mismatches"]]
    errors = [f"session {i}: {e}" for i, s in stats.items() for e in s["errors"]]
    sids = [sid for s in stats.values() for sid in s["session_ids"]]
    # Cross-talk in the strict sense: a reply that carries another call's message.
    foreign = [m for m in mismatches if run_id in m["got"]]
    r.data.update(
        {
            "tool": tool,
            "sessions": args.sessions,
            "calls_per_session": args.calls,
            "total_calls": total,
            "matched": ok,
            "elapsed_s": round(elapsed, 3),
            "calls_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
            "mismatch_examples": mismatches[:10],
            "error_examples": errors[:10],
            "distinct_http_session_ids": len(set(sids)),
        }
    )
    r.check("no_errors", not errors, f"{len(errors)} failed calls/sessions, e.g. {errors[:3]}")
    r.check("no_cross_talk", not foreign, f"{len(foreign)} replies carried another call's message, e.g. {foreign[:3]}")
    r.check("every_result_matches", ok == total, f"{ok}/{total} results matched their own message")
    if sids:  # stateful server: every session got its own Mcp-Session-Id
        r.check(
            "distinct_sessions",
            len(set(sids)) == args.sessions,
            f"{len(set(sids))} distinct Mcp-Session-Id values for {args.sessions} sessions",
        )
    log(f"{ok}/{total} matched in {elapsed:.2f} s")


def main() -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=2, help="concurrent sessions (default 2)")
    p.add_argument("--calls", type=int, default=50, help="concurrent echo calls per session (default 50)")
    args = p.parse_args()
    if args.sessions < 1 or args.calls < 1:
        p.error("--sessions and --calls must be >= 1")
    setup_logging(args.verbose)
    r = Results("concurrent_ids")
    return anyio.run(run_main, r, args.timeout, lambda: concurrent(args, r))


if __name__ == "__main__":
    sys.exit(main())
