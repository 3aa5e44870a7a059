import { api, call, type AuditEvent } from "./client";

export type AuditFilter = {
  kind?: string;
  profile?: string;
  server?: string;
  decision?: string;
  since?: number;
  until?: number;
  after?: string;
  limit?: number;
};

export async function fetchAudit(f: AuditFilter): Promise<{ items: AuditEvent[]; next?: string | null }> {
  const query = Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined && v !== "")) as Record<string, unknown>;
  // `decision` is typed as the API's outcome words; older gateways also wrote "denied" for egress.
  return call(api.GET("/api/audit", { params: { query: query as never } }));
}

/**
 * Outcome words that mean "refused". The gateway records `deny` for every denial (tool calls and
 * egress alike; `?decision=` accepts only its own words, so only `deny` is queried); `denied`, the
 * egress word of earlier builds, is still recognised when shown.
 */
export const isDenial = (outcome: string) => outcome === "deny" || outcome === "denied";

/** Recent denials, newest first. */
export async function fetchDenials(f: Omit<AuditFilter, "decision" | "after">, limit = 10): Promise<AuditEvent[]> {
  return (await fetchAudit({ ...f, decision: "deny", limit })).items;
}

/** The plugin that decided a denial, from the event's detail (tool calls and egress events differ). */
export function denyingPlugin(e: AuditEvent): { plugin?: string; reason?: string } {
  const d = e.detail as Record<string, unknown> | null | undefined;
  if (!d || typeof d !== "object") return {};
  const err = d.error as { data?: { plugin?: unknown }; message?: unknown } | undefined;
  const plugin =
    typeof err?.data?.plugin === "string" ? err.data.plugin : typeof d.plugin === "string" ? d.plugin : undefined;
  const reason =
    typeof d.reason === "string" ? d.reason : typeof err?.message === "string" ? err.message : undefined;
  return { plugin, reason };
}
