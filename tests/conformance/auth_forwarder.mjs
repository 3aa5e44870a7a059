#!/usr/bin/env node
// A small reverse proxy on loopback that adds `Authorization: Bearer <token>` to every request and forwards
// it to one target URL: any method, every end-to-end header both ways (Mcp-Session-Id, MCP-Protocol-Version,
// Last-Event-ID, Origin, Host...), bodies streamed in both directions without buffering, so event-stream
// responses reach the client event by event. When the client goes away, the upstream request is aborted.
//
//   FORWARDER_TOKEN=gig_... node auth_forwarder.mjs --port 0 --target http://127.0.0.1:8080/mcp/p/conf \
//       [--log /path/to/exchange.log]
//
// Every request is sent to the target URL (its query string appended). Once listening it prints
// `listening on http://127.0.0.1:<port>` on stdout. With --log, the whole exchange is written to that file:
// each request's method, headers and body, and each response's status, headers and body chunks, with times.

import fs from 'node:fs';
import http from 'node:http';

function parseArgs(argv) {
    const opts = { port: 0, target: null, log: null };
    for (let i = 0; i < argv.length; i++) {
        const value = argv[i + 1];
        switch (argv[i]) {
            case '--port':
                opts.port = Number(value);
                i++;
                break;
            case '--target':
                opts.target = value;
                i++;
                break;
            case '--log':
                opts.log = value;
                i++;
                break;
            default:
                throw new Error(`unknown argument: ${argv[i]}`);
        }
    }
    if (!opts.target) throw new Error('--target URL is required');
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
    return opts;
}

let opts;
try {
    opts = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error(`auth_forwarder: ${e.message}`);
    console.error('usage: FORWARDER_TOKEN=... auth_forwarder.mjs --target URL [--port N] [--log FILE]');
    process.exit(2);
}
const token = process.env.FORWARDER_TOKEN;
if (!token) {
    console.error('auth_forwarder: FORWARDER_TOKEN is not set');
    process.exit(2);
}
const target = new URL(opts.target);
if (target.protocol !== 'http:') {
    console.error('auth_forwarder: only http:// targets are supported');
    process.exit(2);
}

const logStream = opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null;
let exchangeCounter = 0;
function log(n, what, detail) {
    if (!logStream) return;
    const line = `${new Date().toISOString()} #${n} ${what}${detail === undefined ? '' : ` ${detail}`}\n`;
    logStream.write(line);
}
const redact = (headers) => {
    const copy = { ...headers };
    if (copy.authorization) copy.authorization = 'Bearer <redacted>';
    return JSON.stringify(copy);
};

// Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP = new Set([
    'connection',
    'keep-alive',
    'proxy-connection',
    'proxy-authenticate',
    'proxy-authorization',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
]);

function endToEnd(rawHeaders) {
    // rawHeaders keeps repeated headers and their original spelling: [name, value, name, value, ...].
    // The headers a Connection header names are hop-by-hop too.
    const named = new Set();
    for (let i = 0; i < rawHeaders.length; i += 2) {
        if (rawHeaders[i].toLowerCase() !== 'connection') continue;
        for (const name of rawHeaders[i + 1].split(',')) named.add(name.trim().toLowerCase());
    }
    const out = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i].toLowerCase();
        if (HOP_BY_HOP.has(name) || named.has(name)) continue;
        out.push([rawHeaders[i], rawHeaders[i + 1]]);
    }
    return out;
}

const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
    const n = ++exchangeCounter;
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const headers = endToEnd(req.rawHeaders).filter(([name]) => name.toLowerCase() !== 'authorization');
    headers.push(['Authorization', `Bearer ${token}`]);
    log(n, `>> ${req.method} ${req.url} -> ${target.pathname}${query}`, redact(Object.fromEntries(headers)));

    const upstream = http.request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: `${target.pathname}${query}`,
        headers: headers.flat(),
        agent,
    });
    upstream.setNoDelay(true);

    upstream.on('response', (up) => {
        const responseHeaders = endToEnd(up.rawHeaders);
        log(n, `<< ${up.statusCode}`, JSON.stringify(Object.fromEntries(responseHeaders)));
        res.writeHead(up.statusCode, up.statusMessage, responseHeaders.flat());
        res.flushHeaders();
        up.on('data', (chunk) => {
            log(n, '<< body', JSON.stringify(chunk.toString('utf8')));
            if (!res.write(chunk)) {
                up.pause();
                res.once('drain', () => up.resume());
            }
        });
        up.on('end', () => {
            log(n, '<< end');
            res.end();
        });
        up.on('error', (e) => {
            log(n, '<< error', e.message);
            res.destroy(e);
        });
    });
    upstream.on('error', (e) => {
        log(n, '!! upstream error', e.message);
        if (!res.headersSent) {
            res.writeHead(502, { 'Content-Type': 'text/plain' });
            res.end(`auth_forwarder: ${e.message}\n`);
        } else {
            res.destroy(e);
        }
    });

    req.on('data', (chunk) => {
        log(n, '>> body', JSON.stringify(chunk.toString('utf8')));
        if (!upstream.write(chunk)) {
            req.pause();
            upstream.once('drain', () => req.resume());
        }
    });
    req.on('end', () => upstream.end());
    // The client closed its side (e.g. it stopped reading an event stream): let the target see it too.
    res.on('close', () => {
        if (!res.writableFinished) {
            log(n, '!! client closed before the response ended');
            upstream.destroy();
        }
    });
});

server.listen(opts.port, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
        logStream?.end();
        server.close();
        process.exit(0);
    });
}
