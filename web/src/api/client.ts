import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Profile = Schemas["ProfileView"];
export type Server = Schemas["ServerView"];
export type Running = Schemas["RunningView"];
export type Credential = Schemas["CredentialView"];
export type Plugin = Schemas["PluginView"];
export type PluginDetail = Schemas["PluginDetail"];
export type Metrics = Schemas["MetricsView"];
export type AuditEvent = Schemas["AuditEventView"];
export type User = Schemas["UserView"];
export type Webhook = Schemas["WebhookView"];
export type CreateServer = Schemas["CreateServer"];
export type LoginOptions = Schemas["LoginOptions"];
export type LogLine = Schemas["LogLine"];
export type OAuthApp = Schemas["AppView"];
export type PutOAuthApp = Schemas["PutApp"];
export type Connection = Schemas["ConnectionView"];

/** The one error type of the dashboard, built from the API's `{"error":{code,message}}` envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Same origin only: paths are absolute `/api/...`, cookies go along, nothing is cached by the browser. */
export const api = createClient<paths>({
  baseUrl: "",
  credentials: "same-origin",
  cache: "no-store",
  headers: { Accept: "application/json" },
});

/** A write refused because the object changed since the entity tag it was made against (412). */
export const isStale = (e: unknown): boolean => e instanceof ApiError && e.status === 412;

function toApiError(status: number, error: unknown): ApiError {
  const body = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (body && typeof body.code === "string" && typeof body.message === "string") {
    return new ApiError(status, body.code, body.message);
  }
  return new ApiError(status, "http_" + status, typeof error === "string" && error ? error : `HTTP ${status}`);
}

/**
 * Unwraps an openapi-fetch result: the data, or a thrown ApiError.
 * Network failures (fetch rejects) surface as ApiError(0, "network").
 */
export async function call<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await p;
  } catch (e) {
    throw new ApiError(0, "network", e instanceof Error ? e.message : String(e));
  }
  if (!r.response.ok) throw toApiError(r.response.status, r.error);
  return r.data as T;
}

/** POST /auth/logout (JSON answer), then follow the provider's logout URL when given. */
export async function logout(): Promise<string> {
  const res = await fetch("/auth/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  let redirect: string | undefined;
  try {
    redirect = ((await res.json()) as { redirect?: string }).redirect;
  } catch {
    /* an empty body is fine */
  }
  return redirect || "/login";
}

/** Fetches every page of a keyset list, bounded by `max` items. */
export async function allPages<T>(
  fetchPage: (after: string | undefined) => Promise<{ items: T[]; next?: string | null }>,
  max = 2000,
): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await fetchPage(after);
    out.push(...page.items);
    if (!page.next || out.length >= max) return out;
    after = page.next;
  }
}
