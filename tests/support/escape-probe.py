"""A stdio MCP server that tries to escape its sandbox, for the gateway's isolation tests.

One tool, `probe`, with {"check": NAME, ...arguments}; it returns one text content holding a JSON object
that says what happened. Each check *attempts* something a jailed server must not be able to do and
reports the outcome; the test, outside, asserts that every attempt failed. Standard library only, so it
runs on the system's Python inside the jail.
"""

import ctypes
import errno
import json
import os
import socket
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PTRACE_ATTACH = 16


def call_errno(result):
    if result == -1:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "ok"


def check_read(path):
    try:
        with open(path, "rb") as f:
            return {"ok": True, "data": f.read(200).decode("utf-8", "replace")}
    except OSError as e:
        return {"ok": False, "error": errno.errorcode.get(e.errno, str(e))}


def check_status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                fields[key] = value.split()
    return {"ok": True, "status": fields, "uid": os.getuid(), "euid": os.geteuid()}


def check_connect(host, port, timeout=2.0, source=None, freebind=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if freebind:
            s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind an address this host does not have
        if source:
            s.bind((source, 0))
        if family == socket.AF_INET6:
            s.connect(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4])
        else:
            s.connect((host, port))
        return {"ok": True, "result": "connected"}
    except socket.timeout:
        return {"ok": False, "result": "timeout"}
    except OSError as e:
        return {"ok": False, "result": errno.errorcode.get(e.errno, str(e))}
    finally:
        s.close()


def check_resolve(name):
    try:
        return {"ok": True, "result": socket.getaddrinfo(name, 443)[0][4][0]}
    except OSError as e:
        return {"ok": False, "result": str(e)}


def check_ptrace():
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        result = call_errno(libc.ptrace(PTRACE_ATTACH, child, None, None))
        return {"ok": result == "ok", "result": result}
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


def check_fork_bomb(limit):
    children = []
    failure = None
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children.append(pid)
    except OSError as e:
        failure = errno.errorcode.get(e.errno, str(e))
    count = len(children)
    for pid in children:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    return {"ok": failure is None, "forked": count, "result": failure}


def check_allocate(megabytes):
    blocks = []
    for _ in range(megabytes):
        blocks.append(bytearray(1 << 20))  # zero-filled: every page is touched
    return {"ok": True, "allocated_mb": len(blocks)}


def check_addresses():
    out = []
    try:
        with open("/proc/net/fib_trie") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if "/32 host LOCAL" in line and i > 0:
                out.append(lines[i - 1].split()[-1])
    except OSError:
        pass
    has_ipv6 = os.path.exists("/proc/net/if_inet6") and open("/proc/net/if_inet6").read().strip() != ""
    return {"ok": True, "addresses": sorted(set(out)), "ipv6_addresses": has_ipv6}


def run_check(args):
    check = args.get("check")
    if check == "read":
        return check_read(args["path"])
    if check == "env":
        return {"ok": True, "env": dict(os.environ)}
    if check == "status":
        return check_status()
    if check == "unshare_user":
        r = call_errno(libc.unshare(CLONE_NEWUSER))
        return {"ok": r == "ok", "result": r}
    if check == "unshare_net":
        r = call_errno(libc.unshare(CLONE_NEWNET))
        return {"ok": r == "ok", "result": r}
    if check == "mount":
        r = call_errno(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
        return {"ok": r == "ok", "result": r}
    if check == "ptrace":
        return check_ptrace()
    if check == "connect":
        return check_connect(
            args["host"], int(args["port"]), float(args.get("timeout", 2.0)), args.get("source"), args.get("freebind", False)
        )
    if check == "resolve":
        return check_resolve(args["name"])
    if check == "fork_bomb":
        return check_fork_bomb(int(args.get("limit", 10000)))
    if check == "allocate":
        return check_allocate(int(args["megabytes"]))
    if check == "addresses":
        return check_addresses()
    if check == "pid":
        return {"ok": True, "pid": os.getpid()}
    raise ValueError(f"unknown check {check!r}")


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


TOOL = {"name": "probe", "inputSchema": {"type": "object", "properties": {"check": {"type": "string"}}}}

for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if "id" not in msg or "method" not in msg:
        continue
    method, params = msg["method"], msg.get("params") or {}
    if method == "initialize":
        reply({"jsonrpc": "2.0", "id": msg["id"], "result": {
            "protocolVersion": params.get("protocolVersion"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "escape-probe", "version": "1"},
        }})
    elif method == "tools/list":
        reply({"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": [TOOL]}})
    elif method == "tools/call":
        try:
            result = run_check(params.get("arguments") or {})
        except Exception as e:  # report, never crash the probe
            result = {"ok": False, "exception": repr(e)}
        reply({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [{"type": "text", "text": json.dumps(result)}]}})
    elif method == "ping":
        reply({"jsonrpc": "2.0", "id": msg["id"], "result": {}})
    else:
        reply({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "method not found"}})
