// The "outside" HTTPS API for the egress tests (no dependencies; any Node >= 18).
// Usage: node egress-upstream.js <cert.pem> <key.pem> <address> <port> [<files dir>]
// Routes:
//   /files/NAME               the file NAME of <files dir> (404 when missing)
//   /status/CODE              an empty answer with status CODE (a short JSON body unless CODE is 204)
//   /redirect?to=URL          302 to URL
//   /image                    a PNG image
//   /link                     JSON with a Link header for the next page
//   /text?bytes=N             N bytes of text/plain
//   /slow?ms=N                200 after N milliseconds
//   /echo                     {method, path, query, headers}: what arrived
//   /reflect?header=NAME      the value of header NAME, back in the `x-reflected` header and in the body
//   /download?bytes=N         N bytes of 'a'
// Every request is appended (method, path, query, headers, the connection's peer port) to the log printed on
// stdout, one JSON line each.
"use strict";
const https = require("https");
const fs = require("fs");

const path = require("path");

const [cert, key, address, port, filesDir] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  const url = new URL(req.url, "https://upstream.invalid");
  process.stdout.write(
    JSON.stringify({ method: req.method, path: url.pathname, query: url.search, headers: req.headers, peer: req.socket.remotePort }) + "\n",
  );
  let body = [];
  req.on("data", (c) => body.push(c));
  req.on("end", () => {
    if (filesDir && url.pathname.startsWith("/files/")) {
      const name = path.basename(decodeURIComponent(url.pathname.slice("/files/".length)));
      return fs.readFile(path.join(filesDir, name), (err, data) => {
        if (err) {
          res.writeHead(404, { "content-type": "text/plain" });
          return res.end("not found\n");
        }
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.end(data);
      });
    }
    if (url.pathname.startsWith("/status/")) {
      const code = Number(url.pathname.slice("/status/".length)) || 500;
      if (code === 204) {
        res.writeHead(204);
        return res.end();
      }
      res.writeHead(code, { "content-type": "application/json" });
      return res.end(JSON.stringify({ status: code }));
    }
    if (url.pathname === "/redirect") {
      res.writeHead(302, { location: url.searchParams.get("to") || "/" });
      return res.end();
    }
    if (url.pathname === "/image") {
      res.writeHead(200, { "content-type": "image/png" });
      return res.end(Buffer.from("89504e470d0a1a0a", "hex"));
    }
    if (url.pathname === "/link") {
      res.writeHead(200, { "content-type": "application/json", link: '<https://' + req.headers.host + '/link?page=2>; rel="next"' });
      return res.end("[1,2]");
    }
    if (url.pathname === "/slow") {
      return setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      }, Number(url.searchParams.get("ms") || "0"));
    }
    if (url.pathname === "/text") {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      return res.end("a".repeat(Number(url.searchParams.get("bytes") || "0")));
    }
    if (url.pathname === "/download") {
      const n = Number(url.searchParams.get("bytes") || "0");
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(n) });
      const chunk = Buffer.alloc(64 * 1024, "a");
      let left = n;
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return res.once("drain", pump);
        }
        res.end();
      };
      return pump();
    }
    if (url.pathname === "/reflect") {
      const name = (url.searchParams.get("header") || "authorization").toLowerCase();
      const value = req.headers[name] || "";
      const text = JSON.stringify({ reflected: value, note: "the upstream echoes " + name + ": " + value });
      res.writeHead(200, { "content-type": "application/json", "x-reflected": value });
      // Two writes, the secret split between them, so the proxy must scrub across chunks.
      const half = Math.floor(text.length / 2);
      res.write(text.slice(0, half));
      return setTimeout(() => res.end(text.slice(half)), 20);
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        method: req.method,
        path: url.pathname,
        query: url.search,
        headers: req.headers,
        body: Buffer.concat(body).toString(),
      }),
    );
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), address, () => process.stdout.write(JSON.stringify({ listening: true }) + "\n"));
