#!/usr/bin/env python3
"""What a self-hoster checks after `docker compose -f docker-compose.dev.yml up`, from the host, against the
published ports (run by docker/test/run.sh, which starts the stack and names it in COMPOSE_CMD):

1. /api/health and the dashboard answer;
2. `docker compose exec gateway gigmcp …` administers the gateway (same data directory and key);
3. a login through the dev OpenID provider, by its real redirects and pages, gives a session;
4. the demo profile's sandboxed server answers a tool call from the official Python SDK (the sandbox works
   inside the container);
5. `down` and `up` keep profiles, credentials and plugin settings (the volume);
6. after `docker kill` of the gateway and a restart, no sandbox of before is left, and calls work again.

Exits non-zero naming the first check that failed.
"""

from __future__ import annotations

import html.parser
import http.cookiejar
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

GATEWAY = "http://127.0.0.1:8080"
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shlex.split(os.environ["COMPOSE_CMD"])


def log(message: str) -> None:
    print(f"[check] {message}", file=sys.stderr, flush=True)


def compose(*args: str, check: bool = True, stdin: str | None = None) -> str:
    out = subprocess.run([*COMPOSE, *args], capture_output=True, text=True, input=stdin)
    if check and out.returncode != 0:
        raise SystemExit(f"docker compose {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def cli(*args: str, stdin: str | None = None) -> str:
    return compose("exec", "-T", "gateway", "gigmcp", *args, stdin=stdin)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - the browser follows by hand
        return None


class Browser:
    """Cookies per host, redirects followed by hand, as the dashboard's users' browsers do."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as e:
            response = e
        return response.status, response.headers, response.read().decode("utf-8", "replace")


class Forms(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        if tag == "input" and a.get("name"):
            self.names.append(a["name"] or "")
            if a.get("type") == "hidden":
                self.fields[a["name"] or ""] = a.get("value") or ""


def login(browser: Browser, subject: str) -> None:
    """The whole login: the gateway, the provider's login and consent pages, back with a session."""
    url = f"{GATEWAY}/auth/login"
    status, headers, page = browser.request(url)
    for _ in range(20):
        if status in (301, 302, 303, 307):
            url = urllib.parse.urljoin(url, headers["Location"])
            if url.startswith(f"{GATEWAY}/") and "/auth/callback" not in url:
                return
            status, headers, page = browser.request(url)
            continue
        assert status == 200, f"at {url}: {status} {page[:300]}"
        form = Forms()
        form.feed(page)
        assert form.action, f"no form at {url}: {page[:300]}"
        fields = dict(form.fields)
        if "login" in form.names:
            fields.update(login=subject, password="any")
        url = urllib.parse.urljoin(url, form.action)
        status, headers, page = browser.request(url, fields)
    raise SystemExit("the login never came back to the gateway")


def call_tools(token: str, profile: str, calls: list[dict]) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests/clients/call_tools.py"), "--url", f"{GATEWAY}/mcp/p/{profile}",
         "--token", token, "--calls", json.dumps(calls), "--timeout", "120"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, f"the Python SDK client failed:\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)["data"]["results"]


def demo_token() -> str:
    """A fresh token of the demo profile (`serve --dev` makes a new one at every start)."""
    printed = cli("profile", "token", "rotate", "demo")
    token = next((w for w in printed.split() if w.startswith("gig_")), None)
    assert token, printed
    return token


def echo_works(token: str) -> None:
    results = call_tools(token, "demo", [{"tool": "echo_echo", "arguments": {"message": "from the host"}}])
    assert results[0].get("is_error") is False and "from the host" in results[0]["text"], results


def wait_healthy() -> None:
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{GATEWAY}/api/health", timeout=2) as r:
                if json.load(r)["status"] == "ok":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise SystemExit("the gateway did not become healthy")


def main() -> int:
    log("1. health and dashboard")
    with urllib.request.urlopen(f"{GATEWAY}/api/health", timeout=5) as r:
        assert json.load(r)["status"] == "ok"
    page_request = urllib.request.Request(f"{GATEWAY}/", headers={"Accept": "text/html"})
    with urllib.request.urlopen(page_request, timeout=5) as r:
        page = r.read().decode()
        assert "/assets/index-" in page and "dashboard not built" not in page, page[:300]

    log("2. the CLI in the container")
    cli("plugin", "config", "claims-mapper", '{"roles_claim": "/roles"}')
    token = demo_token()
    cli("server", "add", "keyed", "--builtin", "echo", "--egress", "api.example.test")
    cli("credential", "set", "keyed", "example", "--hosts", "api.example.test", stdin="a-secret\n")

    log("3. a login through the dev OpenID provider")
    browser = Browser()
    login(browser, "admin")
    status, _, body = browser.request(f"{GATEWAY}/api/me")
    assert status == 200 and json.loads(body)["role"] == "admin", (status, body)

    log("4. a sandboxed server answers the Python SDK over the published port")
    time.sleep(1.5)
    echo_works(token)

    log("5. down and up keep the data")
    compose("down")
    compose("up", "-d", "--pull", "never", "--wait", "--wait-timeout", "180")
    wait_healthy()
    listed = cli("credential", "list")
    assert "keyed" in listed and "example" in listed, listed
    assert "roles_claim" in cli("plugin", "inspect", "claims-mapper"), "the plugin's configuration was kept"
    echo_works(demo_token())

    log("6. docker kill, then up: no sandbox of before is left")
    before = compose("top", "gateway")
    compose("kill", "gateway")
    compose("up", "-d", "--pull", "never", "--wait", "--wait-timeout", "180")
    wait_healthy()
    after = compose("top", "gateway")
    assert "mcp-echo" not in after, f"a sandbox survived the kill:\n{after}\n(before:\n{before})"
    echo_works(demo_token())
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
