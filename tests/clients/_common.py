"""Shared plumbing for Gig'MCP's MCP client test scripts (tests/clients/*.py).

Every script talks to one MCP endpoint over streamable HTTP with the official Python
SDK (`mcp` 2.x), sends `Authorization: Bearer TOKEN`, writes progress to stderr and one
JSON object of results to stdout, and exits 0 only when every check passed.

Exit codes: 0 all checks passed; 1 a check failed; 2 usage error; 3 the script could not
run its checks at all (connection refused, handshake failed, overall time limit hit).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPDeprecationWarning, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types.jsonrpc import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

# ping and logging/setLevel are "deprecated as of 2026-07-28" in the SDK but are exactly the
# handshake-era features a gateway must carry; keep stderr readable.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

# Tools that server-everything 2026.8.31 registers for every client, whatever its
# capabilities (src: dist/tools/index.js registerTools).
EVERYTHING_TOOLS_ALWAYS = (
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-long-running-operation",
)
# Registered after `initialized`, only when the (gateway's) client capabilities allow
# (dist/tools/index.js registerConditionalTools).
EVERYTHING_TOOLS_CONDITIONAL = (
    "get-roots-list",  # roots
    "trigger-elicitation-request",  # elicitation
    "trigger-url-elicitation",  # elicitation (url mode)
    "trigger-sampling-request",  # sampling
    "simulate-research-query",  # always, but registered late
    "trigger-sampling-request-async",  # tasks.requests.sampling.createMessage
    "trigger-elicitation-request-async",  # tasks.requests.elicitation.create
)
EVERYTHING_PROMPTS = ("simple-prompt", "args-prompt", "completable-prompt", "resource-prompt")

PAGE_CAP = 100  # pages followed per listing before declaring the paginator broken


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def exposed(prefix: str, name: str) -> str:
    """The name a gateway exposes for `name` of a server with `prefix` (empty: unprefixed)."""
    return f"{prefix}_{name}" if prefix else name


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="streamable-HTTP MCP endpoint, e.g. http://127.0.0.1:8080/mcp/p/dev")
    p.add_argument("--token", default="", help="bearer token (sent as 'Authorization: Bearer TOKEN'; empty: no header)")
    p.add_argument(
        "--prefix-everything",
        default="everything",
        metavar="P",
        help="prefix of the server-everything upstream (default: everything; empty string: no prefix)",
    )
    p.add_argument(
        "--prefix-echo",
        default="echo",
        metavar="P",
        help="prefix of the built-in echo server (default: echo; empty string: no prefix)",
    )
    p.add_argument("--no-echo", action="store_true", help="there is no echo server: skip its checks")
    p.add_argument(
        "--mode",
        default="legacy",
        choices=["legacy", "auto"],
        help="protocol negotiation: legacy = initialize handshake (default); auto = try server/discover first",
    )
    p.add_argument("--timeout", type=float, default=55.0, help="overall time limit in seconds (default 55)")
    p.add_argument(
        "--request-timeout", type=float, default=20.0, help="time limit for one MCP request in seconds (default 20)"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="SDK debug logging on stderr")
    return p


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


# --------------------------------------------------------------------------- results


@dataclass
class HttpInfo:
    """What the HTTP layer saw: session ids the server assigned, status codes."""

    session_ids: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class Results:
    """Named checks (pass/fail with detail) plus free-form data, printed as one JSON object."""

    script: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    fatal: str | None = None
    started: float = field(default_factory=time.monotonic)
    http: HttpInfo = field(default_factory=lambda: HttpInfo())

    def check(self, name: str, ok: bool, detail: Any = None) -> bool:
        # A check name reused (e.g. in a loop) keeps its first failure.
        prev = self.checks.get(name)
        if prev is not None and not prev["ok"]:
            return ok
        # The detail explains a failure; a passing check records none.
        self.checks[name] = {"ok": bool(ok), "detail": None if ok else detail}
        log(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if not ok else ""))
        return bool(ok)

    def fail(self, name: str, detail: Any) -> bool:
        return self.check(name, False, detail)

    @property
    def failed(self) -> list[str]:
        return [k for k, v in self.checks.items() if not v["ok"]]

    def finish(self) -> int:
        ok = self.fatal is None and not self.failed and bool(self.checks)
        out = {
            "script": self.script,
            "ok": ok,
            "elapsed_s": round(time.monotonic() - self.started, 3),
            "failed": self.failed,
            "fatal": self.fatal,
            "checks": self.checks,
            "data": self.data,
        }
        print(json.dumps(out, indent=2, default=str), flush=True)
        if ok:
            log(f"OK: all {len(self.checks)} checks passed")
            return 0
        if self.fatal is not None:
            log(f"FAILED: {self.fatal}")
            return 3
        if not self.checks:
            log("FAILED: no check ran")
            return 1
        for name in self.failed:
            log(f"FAILED check {name}: {self.checks[name]['detail']}")
        return 1


async def run_main(results: Results, timeout: float, body: Callable[[], Awaitable[None]]) -> int:
    """Run `body` under an overall deadline; turn crashes and timeouts into a fatal result."""
    try:
        with anyio.fail_after(timeout):
            await body()
    except TimeoutError:
        results.fatal = f"overall time limit of {timeout:g}s reached (a request or wait hung)"
    except Exception as e:  # noqa: BLE001 - report anything as the script's failure
        detail = describe_exc(e)
        results.fatal = f"unexpected error: {detail}"
        bad = {code: n for code, n in results.http.statuses.items() if code >= 400}
        if bad:
            hint = " (is the bearer token right?)" if 401 in bad or 403 in bad else ""
            results.fatal += f"; HTTP error statuses seen {bad}{hint}"
        log(traceback.format_exc())
    return results.finish()


def describe_exc(e: BaseException) -> str:
    if isinstance(e, MCPError):
        return f"MCPError {e.code}: {e.message}"
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe_exc(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


# --------------------------------------------------------------------------- wire tap


@dataclass
class WireEvent:
    t: float
    direction: str  # "out" (client -> server) or "in"
    kind: str  # request | notification | response | error | exception
    method: str | None
    id: Any
    params: Any


class WireTap:
    """Records every JSON-RPC message that crosses the client transport, both ways."""

    def __init__(self) -> None:
        self.events: list[WireEvent] = []
        self.t0 = time.monotonic()

    def record(self, direction: str, item: Any) -> None:
        t = time.monotonic() - self.t0
        if isinstance(item, Exception):
            self.events.append(WireEvent(t, direction, "exception", None, None, repr(item)))
            return
        msg = item.message if isinstance(item, SessionMessage) else item
        if isinstance(msg, JSONRPCRequest):
            ev = WireEvent(t, direction, "request", msg.method, msg.id, msg.params)
        elif isinstance(msg, JSONRPCNotification):
            ev = WireEvent(t, direction, "notification", msg.method, None, msg.params)
        elif isinstance(msg, JSONRPCResponse):
            ev = WireEvent(t, direction, "response", None, msg.id, None)
        elif isinstance(msg, JSONRPCError):
            ev = WireEvent(t, direction, "error", None, msg.id, msg.error.model_dump(mode="json"))
        else:
            ev = WireEvent(t, direction, "unknown", None, None, repr(msg))
        self.events.append(ev)

    def find(self, **match: Any) -> list[WireEvent]:
        return [e for e in self.events if all(getattr(e, k) == v for k, v in match.items())]


class _TapRead:
    """Read-stream proxy: forwards everything, records each item."""

    def __init__(self, inner: Any, tap: WireTap) -> None:
        self._inner = inner
        self._tap = tap

    @property
    def last_context(self) -> Any:  # the dispatcher restores the sender's contextvars from this
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        item = await self._inner.receive()
        self._tap.record("in", item)
        return item

    def __aiter__(self) -> _TapRead:
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        self._tap.record("in", item)
        return item

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _TapRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class _TapWrite:
    """Write-stream proxy: records each message, then forwards it."""

    def __init__(self, inner: Any, tap: WireTap) -> None:
        self._inner = inner
        self._tap = tap

    async def send(self, item: Any) -> None:
        self._tap.record("out", item)
        await self._inner.send(item)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _TapWrite:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


# --------------------------------------------------------------------------- connecting


@asynccontextmanager
async def connect(
    args: argparse.Namespace,
    *,
    tap: WireTap | None = None,
    http_info: HttpInfo | None = None,
    **client_kwargs: Any,
) -> AsyncIterator[Client]:
    """An entered `mcp.Client` on args.url with the bearer token, response cache off.

    `http_info` collects the HTTP status codes and Mcp-Session-Id values seen.
    """
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    async def on_response(response: httpx2.Response) -> None:
        if http_info is not None:
            http_info.statuses[response.status_code] = http_info.statuses.get(response.status_code, 0) + 1
            sid = response.headers.get("mcp-session-id")
            if sid:
                http_info.session_ids.add(sid)

    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(args.request_timeout, read=max(args.timeout, args.request_timeout)),
        trust_env=False,  # loopback only: never route through an HTTP(S)_PROXY from the environment
        event_hooks={"response": [on_response]},
    )

    @asynccontextmanager
    async def transport() -> AsyncIterator[Any]:
        async with streamable_http_client(args.url, http_client=http) as (read, write):
            if tap is None:
                yield read, write
            else:
                yield _TapRead(read, tap), _TapWrite(write, tap)

    async with http:
        async with Client(
            transport(),
            mode=args.mode,
            cache=None,  # every list call must reach the gateway
            read_timeout_seconds=args.request_timeout,
            **client_kwargs,
        ) as client:
            yield client


async def list_all(results: Results, what: str, fetch: Callable[[str | None], Awaitable[Any]], attr: str) -> list[Any]:
    """Follow nextCursor through every page of a listing; records `pagination_<what>`."""
    items: list[Any] = []
    cursors: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await fetch(cursor)
        pages += 1
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in cursors:
            results.fail(f"pagination_{what}", f"cursor {cursor!r} repeated after {pages} pages")
            break
        if pages >= PAGE_CAP:
            results.fail(f"pagination_{what}", f"still a nextCursor after {pages} pages")
            break
        cursors.append(cursor)
    results.data.setdefault("pages", {})[what] = pages
    return items


def text_of(result: Any) -> str:
    """Concatenated text of a CallToolResult's / prompt message's text content blocks."""
    content = getattr(result, "content", result)
    if not isinstance(content, list):
        content = [content]
    return "\n".join(c.text for c in content if getattr(c, "type", None) == "text")


def expand_template(template: str, values: dict[str, str]) -> str:
    """Fill a simple RFC 6570 template ({var}, {+var}); unknown variables become '1'."""

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).lstrip("+#./;?&")
        return ",".join(values.get(v.strip().rstrip("*"), "1") for v in expr.split(","))

    return re.sub(r"\{([^}]*)\}", sub, template)


def echo_tool(args: argparse.Namespace) -> tuple[str, Callable[[str], str]]:
    """The echo tool to use and the text it returns for a message.

    The built-in echo server returns the message verbatim; with --no-echo, fall back to
    server-everything's `echo`, which answers "Echo: <message>".
    """
    if args.no_echo:
        return exposed(args.prefix_everything, "echo"), lambda m: f"Echo: {m}"
    return exposed(args.prefix_echo, "echo"), lambda m: m
