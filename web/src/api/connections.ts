import { useQuery } from "@tanstack/react-query";
import { api, call, type Connection, type OAuthApp } from "./client";
import { keys } from "./queries";

/** Whose account: the caller's own, or the operator's (admins; used by profiles that have no owner). */
export type Owner = "me" | "operator";

/** Every vendor's OAuth app (any user may read them: they carry no secret). */
export const useOAuthApps = () =>
  useQuery({
    queryKey: keys.oauthApps,
    queryFn: () => call(api.GET("/api/oauth/apps")),
    meta: { suppressErrorToast: true },
  });

/** The connected accounts of `owner`; never a token. */
export const useConnections = (owner: Owner, enabled = true) =>
  useQuery({
    queryKey: keys.connections(owner),
    queryFn: () => call(api.GET("/api/connections", { params: { query: { owner } } })),
    meta: { suppressErrorToast: true },
    enabled,
  });

/**
 * Where the browser goes to connect an account: the gateway signs the flow into a cookie and redirects to the
 * provider, which brings the browser back to the server's page (`server`), to `returnTo`, or to /connections.
 * A navigation, never a fetch: a cross-origin redirect cannot be followed by fetch.
 */
export function connectUrl(vendor: string, to: { server?: string; returnTo?: string }, owner: Owner = "me"): string {
  const query = new URLSearchParams();
  if (to.server) query.set("server", to.server);
  else if (to.returnTo) query.set("return_to", to.returnTo);
  if (owner === "operator") query.set("as", "operator");
  const qs = query.toString();
  return `/api/connections/${encodeURIComponent(vendor)}/start${qs ? "?" + qs : ""}`;
}

/** The redirect URI to register at the provider, as the gateway computes it (from its public URL). */
export const useRedirectUri = () =>
  useQuery({
    queryKey: keys.oauthRedirectUri,
    queryFn: () => call(api.GET("/api/oauth/redirect-uri")),
    meta: { suppressErrorToast: true },
  });

/** The same on this page's origin, while the gateway has not said (or when it cannot be asked). */
export const callbackUrl = (origin: string = window.location.origin): string => `${origin}/api/connections/callback`;

/** One vendor as a connected-accounts list shows it: its app (absent when removed) and the owner's connection. */
export type AccountRow = { vendor: string; app?: OAuthApp; connection?: Connection };

/**
 * A row per vendor that has an app, and one per connection whose app was removed (it still shows, so it can be
 * disconnected), by vendor name.
 */
export function accountRows(apps: OAuthApp[], connections: Connection[]): AccountRow[] {
  const rows = new Map<string, AccountRow>();
  for (const app of apps) rows.set(app.vendor, { vendor: app.vendor, app });
  for (const connection of connections) {
    const row = rows.get(connection.vendor) ?? { vendor: connection.vendor };
    rows.set(connection.vendor, { ...row, connection });
  }
  return [...rows.values()].sort((a, b) => a.vendor.localeCompare(b.vendor));
}

/** Scopes typed as a list separated by spaces or commas. */
export const parseScopes = (text: string): string[] => text.split(/[\s,]+/).filter(Boolean);

/**
 * Authorization parameters typed one `name=value` a line (blank lines skipped; the value may hold `=`).
 * `bad` lists the lines that are not of that form.
 */
export function parseParams(text: string): { params: Record<string, string>; bad: string[] } {
  const params: Record<string, string> = {};
  const bad: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    const name = eq > 0 ? line.slice(0, eq).trim() : "";
    if (!name) bad.push(line);
    else params[name] = line.slice(eq + 1).trim();
  }
  return { params, bad };
}

export const formatParams = (params: Record<string, string>): string =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
