// A test-owned OpenID "provider" that stands between the gateway and the real one (oidc-provider.mjs), to
// produce what a real provider never will: an ID token for another audience, or with another nonce.
//
// Usage: node oidc-interposer.mjs <port> <upstream issuer>   (Node 22)
//
// It is the issuer the gateway is configured with. Its discovery document is the upstream's with `issuer`,
// `jwks_uri` and `token_endpoint` pointing here; the browser still logs in at the upstream's authorization
// endpoint. Token responses are forwarded with the ID token's claims rewritten (`iss` always; `aud` or
// `nonce` as the mode says) and re-signed (RS256) with a key generated at start, published at /jwks.
//
// The mode is set by the test: POST /__mode with a body of `pass` (only iss rewritten: a login must work),
// `wrong-audience` or `bad-nonce`. Prints "listening on <issuer>" once it accepts connections.

import { createServer } from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';

const port = Number(process.argv[2]);
const upstream = process.argv[3].replace(/\/$/, '');
const issuer = `http://127.0.0.1:${port}`;

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = 'interposer-1';
const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
let mode = 'pass';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function resign(idToken) {
  const payload = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString('utf8'));
  payload.iss = issuer;
  if (mode === 'wrong-audience') payload.aud = 'someone-else';
  if (mode === 'bad-nonce') payload.nonce = 'not-the-nonce-of-this-flow';
  const header = { alg: 'RS256', typ: 'JWT', kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function reply(res, status, json) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(json));
}

let upstreamTokenEndpoint;

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__mode') {
      mode = (await body(req)).toString('utf8').trim();
      return reply(res, 200, { mode });
    }
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      const answer = await fetch(`${upstream}/.well-known/openid-configuration`);
      const doc = await answer.json();
      upstreamTokenEndpoint = doc.token_endpoint;
      // The browser's answers come from the upstream and name it (RFC 9207 `iss`), not this issuer: do not
      // declare that they name the issuer.
      delete doc.authorization_response_iss_parameter_supported;
      return reply(res, 200, { ...doc, issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` });
    }
    if (req.method === 'GET' && req.url === '/jwks') {
      return reply(res, 200, { keys: [jwk] });
    }
    if (req.method === 'POST' && req.url === '/token') {
      const headers = { 'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded' };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      const answer = await fetch(upstreamTokenEndpoint ?? `${upstream}/token`, {
        method: 'POST',
        headers,
        body: await body(req),
      });
      const json = await answer.json();
      if (json.id_token) json.id_token = resign(json.id_token);
      return reply(res, answer.status, json);
    }
    reply(res, 404, { error: 'not_found' });
  } catch (e) {
    reply(res, 502, { error: 'interposer_failed', error_description: String(e) });
  }
});

server.listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
