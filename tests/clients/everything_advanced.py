#!/usr/bin/env python3
"""Advanced MCP features through a gateway profile holding server-everything (prefix `everything`).

Checks (--check, repeatable; default: all of progress, sampling, elicitation, cancel, plus
list_changed when --expect-new-tool is given):

  progress      call trigger-long-running-operation with a progress callback; >= 1 progress
                notification, in order, for our request's token, before the result
  sampling      the client answers sampling/createMessage with a canned assistant message;
                trigger-sampling-request's result must contain that text
  elicitation   the client accepts elicitation/create with content built from the requested
                schema; trigger-elicitation-request's result must show the accepted content
  cancel        start trigger-long-running-operation, cancel it 0.5 s after its first progress
                notification (the SDK sends notifications/cancelled when the awaiting scope is
                cancelled); the call must end at once without a result, no late response may
                arrive for it, and the session must still answer ping and an echo call
  list_changed  keep the session open, print READY_FOR_CHANGE on stdout, wait up to 30 s for
                notifications/tools/list_changed, then list tools again: the tool named by
                --expect-new-tool must be there (the driving test adds a server to the profile
                when it reads READY_FOR_CHANGE); the JSON result follows the READY line

Usage:
  everything_advanced.py --url URL --token TOKEN [--check NAME]... [--expect-new-tool NAME]
                         [--prefix-everything P] [--prefix-echo P] [--no-echo]

Against server-everything directly:
  everything_advanced.py --url http://127.0.0.1:PORT/mcp --prefix-everything '' --no-echo
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import anyio
import mcp.types as types
from mcp import MCPError
from mcp.client.session import ClientRequestContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from _common import (
    Results,
    WireTap,
    base_parser,
    connect,
    describe_exc,
    echo_tool,
    exposed,
    list_all,
    log,
    run_main,
    setup_logging,
    text_of,
)

CHECKS = ("progress", "sampling", "elicitation", "cancel", "list_changed")


def form_content(schema: dict[str, Any], name_value: str) -> dict[str, Any]:
    """Content that satisfies a form elicitation's requestedSchema (flat object of primitives)."""
    out: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type")
        if key == "name" and kind == "string":
            out[key] = name_value
        elif "default" in prop:
            out[key] = prop["default"]
        elif kind == "boolean":
            out[key] = True
        elif kind in ("integer", "number"):
            out[key] = prop.get("minimum", 1)
        elif kind == "array":
            items = prop.get("items") or {}
            choices = items.get("enum") or [c.get("const") for c in items.get("anyOf", []) if "const" in c]
            out[key] = choices[:1]
        elif kind == "string":
            choices = prop.get("enum") or [c.get("const") for c in prop.get("oneOf", []) if "const" in c]
            fmt = prop.get("format")
            if choices:
                out[key] = choices[0]
            elif fmt == "email":
                out[key] = "ada@example.com"
            elif fmt == "uri":
                out[key] = "https://example.com/ada"
            elif fmt == "date":
                out[key] = "1815-12-10"
            elif fmt == "date-time":
                out[key] = "1815-12-10T00:00:00Z"
            else:
                out[key] = f"value-{key}"
    return out


class Callbacks:
    """Client-side handlers for server->client requests and notifications, with a record."""

    def __init__(self, run_id: str) -> None:
        self.canned = f"canned sampling answer {run_id}"
        self.elicit_name = f"Ada Lovelace {run_id}"
        self.sampling_calls: list[types.CreateMessageRequestParams] = []
        self.elicit_calls: list[Any] = []
        self.tools_changed = 0
        self.tools_changed_send, self.tools_changed_recv = anyio.create_memory_object_stream[float](100)
        self.notifications: list[str] = []

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.sampling_calls.append(params)
        log(f"sampling/createMessage received ({len(params.messages)} message(s))")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=self.canned),
            model="gigmcp-test-model",
            stop_reason="endTurn",
        )

    async def elicitation(self, context: ClientRequestContext, params: Any) -> types.ElicitResult:
        self.elicit_calls.append(params)
        schema = getattr(params, "requested_schema", None)
        log(f"elicitation/create received (mode={getattr(params, 'mode', None)})")
        if schema is None:  # url mode: nothing to fill in
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content=form_content(schema, self.elicit_name))

    async def messages(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if method:
            self.notifications.append(method)
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed += 1
            log("notifications/tools/list_changed received")
            self.tools_changed_send.send_nowait(time.monotonic())


def sampling_prompt_texts(params: types.CreateMessageRequestParams) -> str:
    parts = []
    for m in params.messages:
        content = m.content if isinstance(m.content, list) else [m.content]
        parts.extend(c.text for c in content if getattr(c, "type", None) == "text")
    return "\n".join(parts)


async def check_progress(client, args, r: Results, tap: WireTap) -> None:
    tool = exposed(args.prefix_everything, "trigger-long-running-operation")
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    n_before = len(tap.events)
    res = await client.call_tool(tool, {"duration": 1.5, "steps": 3}, progress_callback=on_progress)
    r.data["progress"] = {"notifications": seen, "result": text_of(res)}
    r.check("progress_call_result", not res.is_error and "completed" in text_of(res), text_of(res))
    r.check("progress_notifications_received", len(seen) >= 1, f"{len(seen)} progress notifications")
    values = [p for p, _ in seen]
    r.check("progress_in_order", values == sorted(values), f"progress values {values}")
    r.check("progress_total", all(t == 3 for _, t in seen), f"totals {[t for _, t in seen]}")
    # On the wire: every progress notification carries the token of our tools/call.
    events = tap.events[n_before:]
    req = next((e for e in events if e.direction == "out" and e.kind == "request" and e.method == "tools/call"), None)
    prog = [e for e in events if e.direction == "in" and e.method == "notifications/progress"]
    tokens = {(e.params or {}).get("progressToken") for e in prog}
    r.check(
        "progress_token_matches_request",
        req is not None and tokens == {req.id},
        f"request id {req.id if req else None}, progress tokens {tokens}",
    )


async def check_sampling(client, args, r: Results, cb: Callbacks, run_id: str) -> None:
    tool = exposed(args.prefix_everything, "trigger-sampling-request")
    marker = f"sampling prompt {run_id}"
    before = len(cb.sampling_calls)
    res = await client.call_tool(tool, {"prompt": marker, "maxTokens": 64})
    calls = cb.sampling_calls[before:]
    text = text_of(res)
    r.data["sampling"] = {"result": text, "requests": [sampling_prompt_texts(c) for c in calls]}
    r.check("sampling_callback_called_once", len(calls) == 1, f"callback called {len(calls)} times")
    r.check(
        "sampling_request_carries_prompt",
        bool(calls) and marker in sampling_prompt_texts(calls[0]),
        f"sampling request text: {[sampling_prompt_texts(c) for c in calls]}",
    )
    r.check("sampling_result_contains_answer", not res.is_error and cb.canned in text, f"tool result: {text!r}")


async def check_elicitation(client, args, r: Results, cb: Callbacks) -> None:
    tool = exposed(args.prefix_everything, "trigger-elicitation-request")
    before = len(cb.elicit_calls)
    res = await client.call_tool(tool, {})
    calls = cb.elicit_calls[before:]
    text = text_of(res)
    r.data["elicitation"] = {"result": text}
    r.check("elicitation_callback_called_once", len(calls) == 1, f"callback called {len(calls)} times")
    schema = getattr(calls[0], "requested_schema", None) if calls else None
    r.check(
        "elicitation_form_schema",
        isinstance(schema, dict) and "name" in (schema.get("properties") or {}),
        f"requested schema: {schema!r}",
    )
    r.check(
        "elicitation_result_accepted",
        not res.is_error and cb.elicit_name in text and '"action": "accept"' in text,
        f"tool result: {text!r}",
    )


async def check_cancel(client, args, r: Results, tap: WireTap) -> None:
    tool = exposed(args.prefix_everything, "trigger-long-running-operation")
    duration, steps = 4.0, 16  # a progress notification every 0.25 s
    first_progress = anyio.Event()
    progress: list[float] = []
    outcome: dict[str, Any] = {}

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)
        first_progress.set()

    n_before = len(tap.events)
    t_start = time.monotonic()
    scope = anyio.CancelScope()

    async def call() -> None:
        with scope:
            try:
                outcome["result"] = await client.call_tool(
                    tool, {"duration": duration, "steps": steps}, progress_callback=on_progress
                )
            except MCPError as e:
                outcome["error"] = describe_exc(e)

    t_cancel = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        # Cancel only once the tool is demonstrably running upstream.
        with anyio.move_on_after(10):
            await first_progress.wait()
        if first_progress.is_set():
            await anyio.sleep(args.cancel_after)
        t_cancel = time.monotonic()
        scope.cancel()  # the SDK's dispatcher sends notifications/cancelled for the abandoned request
    t_end = time.monotonic()

    ended_after = t_end - t_cancel
    r.data["cancel"] = {
        "progress_before_cancel": len(progress),
        "cancel_at_s": round(t_cancel - t_start, 3),
        "ended_after_cancel_s": round(ended_after, 3),
    }
    r.check("cancel_tool_was_running", first_progress.is_set(), "no progress notification within 10 s of the call")
    r.check(
        "cancel_ended_without_result",
        scope.cancelled_caught and "result" not in outcome and "error" not in outcome,
        f"call finished on its own: {outcome}",
    )
    r.check("cancel_ended_promptly", ended_after < 2.0, f"call ended {ended_after:.2f} s after cancel")

    events = tap.events[n_before:]
    req = next(
        (
            e
            for e in events
            if e.direction == "out"
            and e.kind == "request"
            and e.method == "tools/call"
            and (e.params or {}).get("name") == tool
        ),
        None,
    )
    req_id = req.id if req else None
    sent_cancel = [
        e
        for e in events
        if e.direction == "out"
        and e.method == "notifications/cancelled"
        and (e.params or {}).get("requestId") == req_id
    ]
    r.check("cancel_notification_sent", req is not None and bool(sent_cancel), f"request id {req_id}")

    # The session must still work right away.
    t0 = time.monotonic()
    if client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
        await client.send_ping()
        r.check("cancel_then_ping", True)
    name, expect = echo_tool(args)
    msg = f"after cancel {uuid.uuid4().hex[:8]}"
    res = await client.call_tool(name, {"message": msg})
    r.check("cancel_then_echo", text_of(res) == expect(msg), f"{name} returned {text_of(res)!r}")
    r.data["cancel"]["echo_after_cancel_s"] = round(time.monotonic() - t0, 3)

    # Wait until the upstream operation would have finished: a result for the cancelled
    # request must not arrive (the server was told to stop, or the gateway dropped it).
    wait = duration + 0.75 - (time.monotonic() - t_start)
    if wait > 0:
        log(f"waiting {wait:.1f} s for a late response to the cancelled call (there must be none)")
        await anyio.sleep(wait)
    late = [
        e for e in tap.events[n_before:] if e.direction == "in" and e.kind in ("response", "error") and e.id == req_id
    ]
    late_progress = [
        e
        for e in tap.events[n_before:]
        if e.direction == "in"
        and e.method == "notifications/progress"
        and (e.params or {}).get("progressToken") == req_id
        and e.t > t_cancel - tap.t0
    ]
    r.data["cancel"]["progress_after_cancel"] = len(late_progress)
    if args.allow_late_response:
        r.data["cancel"]["late_response"] = bool(late)
    else:
        r.check(
            "cancel_no_late_response",
            not late,
            f"a {late[0].kind} for cancelled request {req_id} arrived" if late else None,
        )
    res = await client.call_tool(name, {"message": msg + " again"})
    r.check("cancel_session_still_usable", text_of(res) == expect(msg + " again"), f"{name} returned {text_of(res)!r}")


async def check_list_changed(client, args, r: Results, cb: Callbacks) -> None:
    new_tool = args.expect_new_tool

    async def tool_names() -> list[str]:
        tools = await list_all(r, "tools", lambda c: client.list_tools(cursor=c), "tools")
        return [t.name for t in tools]

    before = await tool_names()
    r.data["list_changed"] = {"tools_before": len(before)}
    if not r.check("list_changed_tool_absent_before", new_tool not in before, f"{new_tool!r} already listed"):
        return
    # Drain notifications that arrived before the change (e.g. tools registered after initialize).
    while True:
        try:
            cb.tools_changed_recv.receive_nowait()
        except anyio.WouldBlock:
            break
    counted_before = cb.tools_changed

    print("READY_FOR_CHANGE", flush=True)
    log(f"READY_FOR_CHANGE printed; waiting up to {args.change_timeout:g} s for tools/list_changed")
    t0 = time.monotonic()
    deadline = t0 + args.change_timeout
    found = False
    after: list[str] = before
    while not found:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        with anyio.move_on_after(remaining):
            await cb.tools_changed_recv.receive()
        if time.monotonic() >= deadline and cb.tools_changed == counted_before:
            break
        after = await tool_names()
        found = new_tool in after
        if not found:
            log(f"tools list has {len(after)} tools, {new_tool!r} not yet among them; waiting")
    if not found:  # timed out: report the final state all the same
        after = await tool_names()
        found = new_tool in after
    got = cb.tools_changed - counted_before
    r.data["list_changed"].update(
        {
            "notifications": got,
            "waited_s": round(time.monotonic() - t0, 3),
            "tools_after": len(after),
            "new_tools": sorted(set(after) - set(before)),
        }
    )
    r.check(
        "list_changed_notification", got >= 1, f"no notifications/tools/list_changed within {args.change_timeout:g} s"
    )
    r.check("list_changed_new_tool_listed", found, f"{new_tool!r} not in tools after the change: {after}")


async def advanced(args, r: Results, checks: list[str]) -> None:
    run_id = uuid.uuid4().hex[:8]
    cb = Callbacks(run_id)
    tap = WireTap()
    log(f"connecting to {args.url}; checks: {', '.join(checks)}")
    async with connect(
        args,
        tap=tap,
        http_info=r.http,
        sampling_callback=cb.sampling,
        elicitation_callback=cb.elicitation,
        message_handler=cb.messages,
    ) as client:
        r.data["protocol_version"] = client.protocol_version
        r.check("initialize", True)
        # server-everything registers its sampling/elicitation tools only after initialize
        # (and only if its client - here the gateway - declared those capabilities).
        names = [t.name for t in await list_all(r, "tools", lambda c: client.list_tools(cursor=c), "tools")]
        r.data["tools"] = names
        needed = {
            "progress": ["trigger-long-running-operation"],
            "cancel": ["trigger-long-running-operation"],
            "sampling": ["trigger-sampling-request"],
            "elicitation": ["trigger-elicitation-request"],
        }
        for check in checks:
            for base in needed.get(check, []):
                tool = exposed(args.prefix_everything, base)
                r.check(f"{check}_tool_listed", tool in names, f"{tool!r} not in tools/list: {names}")

        for check in checks:
            log(f"--- {check}")
            try:
                with anyio.fail_after(args.change_timeout + 15 if check == "list_changed" else 20):
                    if check == "progress":
                        await check_progress(client, args, r, tap)
                    elif check == "sampling":
                        await check_sampling(client, args, r, cb, run_id)
                    elif check == "elicitation":
                        await check_elicitation(client, args, r, cb)
                    elif check == "cancel":
                        await check_cancel(client, args, r, tap)
                    elif check == "list_changed":
                        await check_list_changed(client, args, r, cb)
            except TimeoutError:
                r.fail(check, "timed out")
            except Exception as e:  # noqa: BLE001 - one failing check must not hide the others
                r.fail(check, describe_exc(e))
        r.data["notifications_seen"] = sorted(set(cb.notifications))


def main() -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--check", action="append", choices=CHECKS, help="check to run (repeatable; default all)")
    p.add_argument("--expect-new-tool", metavar="NAME", help="list_changed: the exposed name of the tool that appears")
    p.add_argument("--change-timeout", type=float, default=30.0, help="list_changed: seconds to wait (default 30)")
    p.add_argument("--cancel-after", type=float, default=0.5, help="cancel: seconds after the first progress (0.5)")
    p.add_argument(
        "--allow-late-response",
        action="store_true",
        help="cancel: only report (not fail on) a response that arrives for the cancelled request",
    )
    args = p.parse_args()
    if args.check:
        checks = [c for c in CHECKS if c in args.check]
    else:
        checks = [c for c in CHECKS if c != "list_changed" or args.expect_new_tool]
    if "list_changed" in checks and not args.expect_new_tool:
        p.error("--check list_changed needs --expect-new-tool NAME")
    if "list_changed" in checks and args.timeout < args.change_timeout + 20:
        args.timeout = args.change_timeout + 25  # room for the other checks
    setup_logging(args.verbose)
    r = Results("everything_advanced")
    return anyio.run(run_main, r, args.timeout, lambda: advanced(args, r, checks))


if __name__ == "__main__":
    sys.exit(main())
