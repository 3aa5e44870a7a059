#!/usr/bin/env python3
"""Basic MCP surface through a gateway profile holding the echo server and server-everything.

Checks: tools listed with prefixes (every server-everything tool present as
`<prefix>_<name>`, none unprefixed, `echo_echo` present), calls to `echo_echo`,
everything's `echo` and `get-sum`, an unknown tool rejected, resources listed and a static
one read, a resource template filled in and read (text and blob), prompts listed (prefixed)
and fetched with arguments, prompt-argument completion, ping, and pagination followed to
the end on every listing.

Usage:
  everything_basic.py --url URL --token TOKEN [--prefix-everything P] [--prefix-echo P]
                      [--no-echo] [--skip CHECK]... [--other-prefix P]...

Against server-everything directly (no gateway, no prefixes, no echo server):
  everything_basic.py --url http://127.0.0.1:PORT/mcp --prefix-everything '' --no-echo
"""

from __future__ import annotations

import base64
import sys
import uuid

import anyio
from mcp import MCPError
from mcp_types import PromptReference
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from _common import (
    EVERYTHING_PROMPTS,
    EVERYTHING_TOOLS_ALWAYS,
    EVERYTHING_TOOLS_CONDITIONAL,
    Results,
    base_parser,
    connect,
    describe_exc,
    expand_template,
    exposed,
    list_all,
    log,
    run_main,
    setup_logging,
    text_of,
)

OPTIONAL_CHECKS = ("completion", "ping", "unknown_tool")


async def basic(args, r: Results) -> None:
    pe, pc = args.prefix_everything, args.prefix_echo
    skip = set(args.skip or ())
    run_id = uuid.uuid4().hex[:8]

    log(f"connecting to {args.url}")
    async with connect(args, http_info=r.http) as client:
        r.data["protocol_version"] = client.protocol_version
        r.data["server_info"] = client.server_info.model_dump(mode="json") if client.server_info else None
        caps = client.server_capabilities
        r.data["server_capabilities"] = caps.model_dump(mode="json", exclude_none=True)
        r.check("initialize", True)

        # ---------------------------------------------------------------- tools
        tools = await list_all(r, "tools", lambda c: client.list_tools(cursor=c), "tools")
        names = [t.name for t in tools]
        r.data["tools"] = names
        log(f"{len(names)} tools: {', '.join(names)}")
        dups = sorted({n for n in names if names.count(n) > 1})
        r.check("tools_unique", not dups, f"duplicate tool names: {dups}" if dups else None)
        r.check("tool_names_within_128", all(len(n) <= 128 for n in names), [n for n in names if len(n) > 128])

        missing = [exposed(pe, t) for t in EVERYTHING_TOOLS_ALWAYS if exposed(pe, t) not in names]
        r.check("everything_tools_all_present", not missing, f"missing: {missing}" if missing else None)
        n_everything = sum(1 for n in names if pe and n.startswith(pe + "_"))
        if pe:
            r.check("everything_tools_several", n_everything >= 5, f"only {n_everything} {pe}_* tools")
            # No tool of server-everything may leak unprefixed.
            leaked = [t for t in EVERYTHING_TOOLS_ALWAYS + EVERYTHING_TOOLS_CONDITIONAL if t in names]
            r.check("no_unprefixed_everything_tools", not leaked, f"unprefixed: {leaked}" if leaked else None)
        if not args.no_echo:
            echo_name = exposed(pc, "echo")
            r.check("echo_tool_present", echo_name in names, f"{echo_name!r} not in tool list")
            if pc and pe:
                allowed = tuple(f"{x}_" for x in [pe, pc, *(args.other_prefix or [])])
                stray = [n for n in names if not n.startswith(allowed)]
                r.check("all_tools_prefixed", not stray, f"names without a server prefix: {stray}" if stray else None)

        # -------------------------------------------------------------- tool calls
        if not args.no_echo:
            msg = f'hello from everything_basic {run_id} ✓ "quotes" and \\ backslash'
            res = await client.call_tool(exposed(pc, "echo"), {"message": msg})
            got = text_of(res)
            r.check(
                "call_echo_echo",
                not res.is_error and got == msg,
                None if got == msg else f"is_error={res.is_error} text={got!r}, want {msg!r}",
            )

        msg = f"everything echo {run_id}"
        res = await client.call_tool(exposed(pe, "echo"), {"message": msg})
        got = text_of(res)
        want = f"Echo: {msg}"
        r.check("call_everything_echo", not res.is_error and got == want, f"text={got!r}, want {want!r}")

        res = await client.call_tool(exposed(pe, "get-sum"), {"a": 19, "b": 23.5})
        got = text_of(res)
        r.check("call_everything_get_sum", not res.is_error and "42.5" in got, f"is_error={res.is_error} text={got!r}")

        res = await client.call_tool(exposed(pe, "get-structured-content"), {"location": "New York"})
        sc = res.structured_content
        r.check(
            "call_everything_structured_content",
            not res.is_error and isinstance(sc, dict) and "temperature" in sc,
            f"is_error={res.is_error} structured_content={sc!r}",
        )

        if "unknown_tool" not in skip:
            bogus = exposed(pe, f"no-such-tool-{run_id}")
            try:
                res = await client.call_tool(bogus, {})
                r.check("unknown_tool_rejected", res.is_error, f"{bogus} returned a non-error result: {text_of(res)!r}")
            except MCPError as e:
                r.check("unknown_tool_rejected", True)
                r.data["unknown_tool_error"] = describe_exc(e)

        # ------------------------------------------------------------- resources
        resources = await list_all(r, "resources", lambda c: client.list_resources(cursor=c), "resources")
        uris = [res.uri for res in resources]
        r.data["resources"] = uris
        log(f"{len(uris)} resources")
        dups = sorted({u for u in uris if uris.count(u) > 1})
        r.check("resources_unique", not dups, f"duplicate resource URIs: {dups}" if dups else None)
        static = [res for res in resources if "static/document/" in res.uri]
        if r.check("resources_static_listed", bool(static), f"no static document among {uris}"):
            target = next((res for res in static if res.uri.endswith("features.md")), static[0])
            rr = await client.read_resource(target.uri)
            text = rr.contents[0].text if rr.contents and hasattr(rr.contents[0], "text") else ""
            want = "Everything Server" if target.uri.endswith("features.md") else ""
            r.check(
                "read_static_resource",
                bool(text) and want in text and rr.contents[0].uri == target.uri,
                f"read {target.uri}: uri={rr.contents[0].uri if rr.contents else None} {len(text)} chars",
            )
            r.data["static_resource_read"] = {"uri": target.uri, "chars": len(text)}

        templates = await list_all(
            r, "resource_templates", lambda c: client.list_resource_templates(cursor=c), "resource_templates"
        )
        tmpl = [t.uri_template for t in templates]
        r.data["resource_templates"] = tmpl
        text_t = next((t for t in tmpl if "dynamic/text/" in t), None)
        blob_t = next((t for t in tmpl if "dynamic/blob/" in t), None)
        r.check("resource_templates_listed", bool(text_t and blob_t), f"templates: {tmpl}")
        if text_t:
            uri = expand_template(text_t, {"resourceId": "7"})
            rr = await client.read_resource(uri)
            text = getattr(rr.contents[0], "text", "") if rr.contents else ""
            r.check("read_template_text_resource", "Resource 7:" in text, f"read {uri}: {text!r}")
            r.data["template_text_read"] = {"uri": uri, "text": text}
        if blob_t:
            uri = expand_template(blob_t, {"resourceId": "8"})
            rr = await client.read_resource(uri)
            blob = getattr(rr.contents[0], "blob", None) if rr.contents else None
            decoded = base64.b64decode(blob).decode("utf-8", "replace") if blob else ""
            r.check("read_template_blob_resource", "Resource 8:" in decoded, f"read {uri}: {decoded!r}")

        # --------------------------------------------------------------- prompts
        prompts = await list_all(r, "prompts", lambda c: client.list_prompts(cursor=c), "prompts")
        pnames = [p.name for p in prompts]
        r.data["prompts"] = pnames
        missing = [exposed(pe, p) for p in EVERYTHING_PROMPTS if exposed(pe, p) not in pnames]
        r.check("everything_prompts_present", not missing, f"missing: {missing}; listed: {pnames}")
        if pe:
            leaked = [p for p in EVERYTHING_PROMPTS if p in pnames]
            r.check("no_unprefixed_prompts", not leaked, f"unprefixed: {leaked}" if leaked else None)

        gp = await client.get_prompt(exposed(pe, "simple-prompt"))
        got = text_of(gp.messages[0].content) if gp.messages else ""
        r.check("get_prompt_simple", "simple prompt without arguments" in got, f"messages: {gp.messages!r}")

        gp = await client.get_prompt(exposed(pe, "args-prompt"), {"city": "Paris", "state": "Texas"})
        got = text_of(gp.messages[0].content) if gp.messages else ""
        r.check("get_prompt_with_args", got == "What's weather in Paris, Texas?", f"text={got!r}")

        gp = await client.get_prompt(exposed(pe, "resource-prompt"), {"resourceType": "Text", "resourceId": "3"})
        embedded = [m.content for m in gp.messages if getattr(m.content, "type", None) == "resource"]
        emb_text = getattr(embedded[0].resource, "text", "") if embedded else ""
        r.check("get_prompt_embedded_resource", "Resource 3:" in emb_text, f"messages: {gp.messages!r}")

        if "completion" not in skip:
            cr = await client.complete(
                PromptReference(type="ref/prompt", name=exposed(pe, "completable-prompt")),
                {"name": "department", "value": "Eng"},
            )
            values = cr.completion.values
            r.check("completion_prompt_argument", values == ["Engineering"], f"values={values!r}")

        if "ping" not in skip and client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:  # ping is gone in 2026
            await client.send_ping()
            r.check("ping", True)


def main() -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--skip", action="append", choices=OPTIONAL_CHECKS, help="skip an optional check (repeatable)")
    p.add_argument(
        "--other-prefix",
        action="append",
        metavar="P",
        help="prefix of another server in the profile whose tools may also be listed (repeatable)",
    )
    args = p.parse_args()
    setup_logging(args.verbose)
    r = Results("everything_basic")
    return anyio.run(run_main, r, args.timeout, lambda: basic(args, r))


if __name__ == "__main__":
    sys.exit(main())
