// The "SaaS API" of the connected-accounts tests: an HTTPS server that accepts a request only with a bearer
// access token the OAuth provider (oidc-provider.mjs with "oauth": true) reports active at its
// introspection endpoint. Node 22, nothing beyond Node.
//
// Usage: NODE_EXTRA_CA_CERTS=<the provider's CA PEM> node oauth-api.mjs <config.json>
//   (NODE_EXTRA_CA_CERTS is how Node trusts the provider's certificate: it is read at startup only.)
//
// config.json:
//   { "cert": "/path/cert.pem", "key": "/path/key.pem", "address": "198.51.100.2", "port": 443,
//     "introspection_url": "https://198.51.100.2:8443/token/introspection",
//     "client_id": "api", "client_secret": "..." }
//
// Every request, whatever its method and path: the token of `Authorization: Bearer <token>` is introspected
// (client_secret_basic with client_id/client_secret). An active access token gets 200
//   {"ok": true, "sub", "scope", "client_id", "method", "path", "query"}
// (client_id: the client the token was issued to); anything else (no bearer, an inactive token, a refresh
// token, introspection failing) gets 401 {"error": "invalid_token"} with WWW-Authenticate: Bearer
// error="invalid_token". Each request prints one JSON line on stdout:
//   {"method", "path", "query", "peer": <the client's port: one per connection>, "active", "sub",
//    "token_sha256": <the first 16 hex digits of the token's sha256, or null>}   (never the token itself)
// With "revocation_url", "revoke_client_id" and "revoke_client_secret" (the app's client) in config.json,
// `/revoke` with an active token also revokes it at the provider, as a user withdrawing the app's access
// there would (which ends the token's whole grant): 200 {"ok": true, "revoked": true, ...}.
// Keep-alive connections stay open 60 s between requests. Prints "listening on https://<address>:<port>"
// once it accepts connections; exits on SIGTERM/SIGINT.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const basic = `Basic ${Buffer.from(
  `${encodeURIComponent(config.client_id)}:${encodeURIComponent(config.client_secret)}`,
).toString('base64')}`;

// The introspection response, or {active: false} when the provider cannot be asked.
async function introspect(token) {
  try {
    const response = await fetch(config.introspection_url, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    if (!response.ok) throw new Error(`introspection answered ${response.status}`);
    return await response.json();
  } catch (err) {
    console.error(`introspection failed: ${err.message}`);
    return { active: false };
  }
}

async function handle(req, res) {
  req.resume(); // the request body is not read; drain it so the connection can serve the next request
  const url = new URL(req.url, 'https://api.invalid');
  const token = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;
  const info = token ? await introspect(token) : { active: false };
  // A refresh token introspects active too (without token_type): only access tokens open the API.
  const active = info.active === true && info.token_type === 'Bearer';
  const request = { method: req.method, path: url.pathname, query: url.search.slice(1) };

  console.log(JSON.stringify({
    ...request,
    peer: req.socket.remotePort,
    active,
    sub: active ? info.sub : null,
    token_sha256: token ? createHash('sha256').update(token).digest('hex').slice(0, 16) : null,
  }));

  let revoked;
  if (active && url.pathname === '/revoke' && config.revocation_url) {
    const app = `${encodeURIComponent(config.revoke_client_id)}:${encodeURIComponent(config.revoke_client_secret)}`;
    const answer = await fetch(config.revocation_url, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(app).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    revoked = answer.ok;
  }
  const [status, headers, body] = active
    ? [200, {}, { ok: true, sub: info.sub, scope: info.scope, client_id: info.client_id, revoked, ...request }]
    : [401, { 'www-authenticate': 'Bearer error="invalid_token"' }, { error: 'invalid_token' }];
  res.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const tls = { cert: readFileSync(config.cert), key: readFileSync(config.key) };
const server = createServer(tls, (req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    res.writeHead(500).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(config.port, config.address, () => {
  console.log(`listening on https://${config.address}:${config.port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
