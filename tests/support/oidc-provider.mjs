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
//
// Optional, for an OAuth2 provider of "connected accounts" (a SaaS the gateway holds tokens for):
//   "issuer": "https://auth.oauth.test:8443"   the issuer instead of http(s)://127.0.0.1:<port>; it changes
//       neither the port listened on nor the scheme, which "tls" decides: keep them matching
//   "address": "198.51.100.2"   the address to listen on instead of 127.0.0.1
//   "ttl": {"AccessToken": 5, "RefreshToken": 3600}   seconds, merged over this script's (Session,
//       Interaction, Grant, AccessToken, IdToken: 600; AuthorizationCode: 60; RefreshToken: 14 days).
//       Every token of a grant dies with it: raise "Grant" for refresh chains longer than 600 s.
//   "oauth": true         what an OAuth2 SaaS provider does:
//     - opaque access tokens (as always here: no resource indicators) that any confidential client may
//       check at /token/introspection (e.g. the API's own client, see below); /token/revocation;
//     - a refresh token at every authorization_code grant for the clients whose grant_types include
//       refresh_token, whatever the scopes (offline_access not needed), and not bound to the login session;
//     - refresh tokens rotate at every use. Presenting a consumed one fails with invalid_grant AND revokes
//       the whole grant (oidc-provider's reuse detection): every access and refresh token of that
//       authorization, the newest included, is dead, and the user must authorize again. Revoking an access
//       or a refresh token at /token/revocation likewise kills every token of its grant;
//     - any scope (e.g. "tasks.read tasks.write") requested at the authorization endpoint (GET) is known,
//       granted by the consent form and returned in the token responses' `scope`.
//   "events": "/path/events.jsonl"   (with oauth) one JSON line appended per token request and revocation:
//       {"event":"grant.success","grant_type":"authorization_code"|"refresh_token","client_id":..,
//        "time":<ms>}
//       {"event":"grant.error","grant_type":..,"client_id":..,"error":"invalid_grant",
//        "error_description":..,"error_detail":"refresh token already used"|..,"time":..}
//       {"event":"revoked","route":"revocation"|"token","client_id":..,
//        "token":"RefreshToken"|"AccessToken"|null,"time":..}
//       (route "token": a consumed refresh token was presented again, and its grant revoked)
//   "slow_token_ms": 500   (with oauth) every POST to /token waits that long first, so two refreshes overlap.
//
// Clients for oauth mode: the app {"client_id": "gigmcp-app", "client_secret": "...", "redirect_uris": [...],
// "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
// "token_endpoint_auth_method": "client_secret_basic"}; an introspection-only client for the API
// {"client_id": "api", "client_secret": "...", "redirect_uris": [], "grant_types": [], "response_types": []}
// (oidc-provider accepts it as is; it gets no token: "requested grant type is not allowed for this client").

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const { default: Provider } = await import(
  new URL('../deps/node_modules/oidc-provider/lib/index.js', import.meta.url)
);

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// With "tls": {"cert": <PEM file>, "key": <PEM file>}, the provider serves HTTPS (a certificate for 127.0.0.1).
const issuer = config.issuer ?? `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`;
const address = config.address ?? '127.0.0.1';

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
    ...(config.oauth && {
      // Any client that authenticates (not a public one) may introspect any token.
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none',
      },
      revocation: { enabled: true },
    }),
  },
  pkce: { required: () => true },
  cookies: { keys: ['gigmcp-tests-only'] },
  ttl: {
    Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60,
    ...config.ttl,
  },
  ...(config.oauth && {
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    expiresWithSession: async () => false,
  }),
});

if (config.oauth) {
  // oidc-provider grants only the scopes of its `scopes` setting (a fixed list; others are silently dropped).
  // To take any scope, each scope requested at the authorization endpoint joins that set first; the set is
  // internal (weak_cache), which the pinned version lets us reach by path.
  const { default: internals } = await import(
    new URL('../deps/node_modules/oidc-provider/lib/helpers/weak_cache.js', import.meta.url)
  );
  const scopes = internals(provider).configuration.scopes;
  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth' && typeof ctx.query.scope === 'string') {
      for (const scope of ctx.query.scope.split(' ')) {
        if (/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)) scopes.add(scope);
      }
    }
    await next();
  });

  if (config.slow_token_ms) {
    provider.use(async (ctx, next) => {
      if (ctx.method === 'POST' && ctx.path === '/token') {
        await new Promise((resolve) => setTimeout(resolve, config.slow_token_ms));
      }
      await next();
    });
  }

  const event = (name, ctx, fields) => {
    if (!config.events) return;
    const line = { event: name, ...fields, client_id: ctx.oidc?.client?.clientId ?? null, time: Date.now() };
    appendFileSync(config.events, `${JSON.stringify(line)}\n`);
  };
  // The grant type is a token request parameter (ctx.oidc.params); the raw body, should the request fail
  // before the parameters are assembled.
  const grantType = (ctx) => ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type ?? null;
  provider.on('grant.success', (ctx) => event('grant.success', ctx, { grant_type: grantType(ctx) }));
  provider.on('grant.error', (ctx, err) =>
    event('grant.error', ctx, {
      grant_type: grantType(ctx),
      error: err.error ?? 'server_error',
      error_description: err.error_description,
      error_detail: err.error_detail,
    }),
  );
  // A revocation request answers 200 whatever the token: only one that found its token counts. Revoking
  // a grant at the token endpoint (a consumed refresh token presented again) emits grant.revoked.
  const revokedToken = (ctx) =>
    ['RefreshToken', 'AccessToken'].find((kind) => ctx.oidc.entities[kind]) ?? null;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200 && revokedToken(ctx)) {
      event('revoked', ctx, { route: 'revocation', token: revokedToken(ctx) });
    }
  });
  provider.on('grant.revoked', (ctx) => {
    if (ctx.oidc.route !== 'revocation') {
      event('revoked', ctx, { route: ctx.oidc.route, token: revokedToken(ctx) });
    }
  });
}

const listening = () => console.log(`listening on ${issuer}`);
const server = config.tls
  ? createServer(
      { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
      provider.callback(),
    ).listen(config.port, address, listening)
  : provider.listen(config.port, address, listening);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
