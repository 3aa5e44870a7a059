// A real OpenID provider for the tests: oidc-provider (npm, pinned in tests/deps) on loopback, with its
// default development interactions (a login form that accepts any password, a consent form).
//
// Usage: node oidc-provider.mjs <config.json>   (Node 22: tests/deps/node_modules/.bin/node)
//
// config.json:
//   { "port": 9123, "userinfo_only": false, "tls": null,
//     "clients": [{ "client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//                   "post_logout_redirect_uris": ["..."] }],
//     "accounts": "/path/accounts.json" }
//
// accounts.json maps a subject (what the test types as the login) to its claims, e.g.
//   { "alice": { "name": "Alice", "email": "alice@example.test", "groups": ["ops"] } }
// It is read at every lookup, so a test may change a user's claims between logins. An unknown login is
// refused. Every claim of the account goes into the ID token (conformIdTokenClaims: false), the way
// providers configured for role claims do; with "userinfo_only": true in config.json the ID token carries
// only `sub` and the claims are released at the userinfo endpoint alone (conformIdTokenClaims: true), for
// the scopes profile, email and groups.
// Prints "listening on <issuer>" once it accepts connections.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const { default: Provider } = await import(
  new URL('../deps/node_modules/oidc-provider/lib/index.js', import.meta.url)
);

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// With "tls": {"cert": <PEM file>, "key": <PEM file>}, the provider serves HTTPS (a certificate for 127.0.0.1).
const issuer = `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`;

function account(id) {
  const accounts = JSON.parse(readFileSync(config.accounts, 'utf8'));
  return Object.hasOwn(accounts, id) ? accounts[id] : undefined;
}

// A signing key of its own at every start: restarting the provider rotates its keys.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  async findAccount(_ctx, id) {
    const claims = account(id);
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ ...claims, sub: id }) };
  },
  // Every claim the accounts use is released with the openid scope; in userinfo_only mode, with scopes
  // of their own, which the ID token then does not carry.
  claims: config.userinfo_only
    ? { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups', 'roles', 'gigmcp_profiles'] }
    : { openid: ['sub', 'groups', 'roles', 'name', 'email', 'gigmcp_profiles'] },
  conformIdTokenClaims: Boolean(config.userinfo_only),
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  cookies: { keys: ['gigmcp-tests-only'] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
});

const listening = () => console.log(`listening on ${issuer}`);
const server = config.tls
  ? createServer(
      { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
      provider.callback(),
    ).listen(config.port, '127.0.0.1', listening)
  : provider.listen(config.port, '127.0.0.1', listening);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
