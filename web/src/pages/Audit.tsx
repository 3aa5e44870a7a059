import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useEffect, useId, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "wouter";
import { denyingPlugin, fetchAudit, isDenial, type AuditFilter } from "../api/audit";
import type { AuditEvent } from "../api/client";
import { keys, useProfiles, useServers } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { Dialog } from "../components/Dialog";
import { fmtTime } from "../format";

const KIND_PREFIXES = ["mcp.*", "mcp.tool_call", "egress.*", "api.*", "auth.*", "plugin.*"];
const DECISIONS = ["ok", "deny", "error", "tool_error"];
const PAGE = 50;

/** The outcome words one filter asks for (one stream each, merged); today always one word. */
const decisionWords = (d: string | undefined) => [d];

const toLocalInput = (ms: string | null) => {
  if (!ms) return "";
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const fromLocalInput = (v: string) => (v ? String(new Date(v).getTime()) : "");

type Cursor = Record<string, string | null | undefined>;

function EventDrawer({ event, id, onClose }: { event: AuditEvent | undefined; id: string; onClose: () => void }) {
  const { t } = useTranslation();
  const deny = event && isDenial(event.outcome) ? denyingPlugin(event) : {};
  return (
    <Dialog open onClose={onClose} title={t("audit.event", { id })} className="drawer" actions={<button type="button" onClick={onClose}>{t("common.close")}</button>}>
      {!event ? (
        <p className="muted">{t("audit.eventNotLoaded")}</p>
      ) : (
        <div className="stack">
          <dl className="kv">
            <dt>{t("audit.time")}</dt>
            <dd>{fmtTime(event.time_ms)}</dd>
            <dt>{t("audit.kind")}</dt>
            <dd className="mono">{event.kind}</dd>
            <dt>{t("audit.actor")}</dt>
            <dd className="mono">{event.actor}</dd>
            <dt>{t("audit.profile")}</dt>
            <dd>{event.profile ? <Link href={`/profiles/${encodeURIComponent(event.profile)}`}>{event.profile}</Link> : "—"}</dd>
            <dt>{t("audit.server")}</dt>
            <dd>{event.server ? <Link href={`/servers/${encodeURIComponent(event.server)}`}>{event.server}</Link> : "—"}</dd>
            <dt>{t("audit.outcome")}</dt>
            <dd><Outcome o={event.outcome} /></dd>
            {deny.plugin && (
              <>
                <dt>{t("audit.decidedBy")}</dt>
                <dd><Link href={`/plugins/${encodeURIComponent(deny.plugin)}`}>{deny.plugin}</Link></dd>
              </>
            )}
            {deny.reason && (
              <>
                <dt>{t("audit.reason")}</dt>
                <dd>{deny.reason}</dd>
              </>
            )}
          </dl>
          <div>
            <h3>{t("audit.detail")}</h3>
            <div className="codeblock">
              <pre data-testid="audit-detail">{JSON.stringify(event.detail, null, 2)}</pre>
            </div>
          </div>
        </div>
      )}
    </Dialog>
  );
}

function Outcome({ o }: { o: string }) {
  const cls = o === "ok" ? "ok" : isDenial(o) ? "danger" : o === "error" ? "warn" : "";
  return <span className={`badge ${cls}`}>{o}</span>;
}

export function Audit() {
  const { t } = useTranslation();
  const [params, setParams] = useSearchParams();
  const profiles = useProfiles();
  const servers = useServers();
  const filter: AuditFilter = {
    kind: params.get("kind") || undefined,
    profile: params.get("profile") || undefined,
    server: params.get("server") || undefined,
    decision: params.get("decision") || undefined,
    since: params.get("since") ? Number(params.get("since")) : undefined,
    until: params.get("until") ? Number(params.get("until")) : undefined,
  };
  const eventId = params.get("event");
  const words = decisionWords(filter.decision);
  const [form, setForm] = useState({ kind: "", profile: "", server: "", decision: "", since: "", until: "" });
  useEffect(() => {
    setForm({
      kind: params.get("kind") ?? "",
      profile: params.get("profile") ?? "",
      server: params.get("server") ?? "",
      decision: params.get("decision") ?? "",
      since: toLocalInput(params.get("since")),
      until: toLocalInput(params.get("until")),
    });
  }, [params]);
  const ids = { kind: useId(), profile: useId(), server: useId(), decision: useId(), since: useId(), until: useId(), kinds: useId() };

  const pages = useInfiniteQuery({
    queryKey: [...keys.audit, "list", filter],
    initialPageParam: {} as Cursor,
    queryFn: async ({ pageParam }) => {
      // One stream per outcome word; each keeps its own keyset cursor.
      const parts = await Promise.all(
        words.map(async (w) => {
          const key = w ?? "";
          if (key in pageParam && pageParam[key] == null) return { w: key, items: [] as AuditEvent[], next: null };
          const r = await fetchAudit({ ...filter, decision: w, after: pageParam[key] ?? undefined, limit: PAGE }).catch((e) => {
            if (w === "denied") return { items: [] as AuditEvent[], next: null }; // not an outcome word on this gateway
            throw e;
          });
          return { w: key, items: r.items, next: r.next ?? null };
        }),
      );
      const cursor: Cursor = Object.fromEntries(parts.map((p) => [p.w, p.next]));
      const items = parts.flatMap((p) => p.items).sort((a, b) => b.time_ms - a.time_ms || b.id - a.id);
      return { items, cursor, more: parts.some((p) => p.next) };
    },
    getNextPageParam: (last) => (last.more ? last.cursor : undefined),
  });

  // Live tail: poll for events newer than the newest shown.
  const [tail, setTail] = useState(false);
  const [tailed, setTailed] = useState<AuditEvent[]>([]);
  useEffect(() => setTailed([]), [params]);
  const loaded = useMemo(() => {
    const seen = new Set<number>();
    const all = [...tailed, ...(pages.data?.pages.flatMap((p) => p.items) ?? [])];
    return all.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
  }, [tailed, pages.data]);
  const newest = loaded[0]?.time_ms;
  useQuery({
    queryKey: [...keys.audit, "tail", filter, newest],
    enabled: tail && !filter.until,
    refetchInterval: 3000,
    refetchIntervalInBackground: false,
    queryFn: async () => {
      const since = newest ?? Date.now() - 60_000;
      const parts = await Promise.all(
        words.map((w) => fetchAudit({ ...filter, decision: w, since, limit: 200 }).catch(() => ({ items: [] as AuditEvent[] }))),
      );
      const fresh = parts.flatMap((p) => p.items);
      if (fresh.length) setTailed((old) => [...fresh, ...old].sort((a, b) => b.time_ms - a.time_ms || b.id - a.id));
      return fresh.length;
    },
  });

  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (form.kind) next.set("kind", form.kind);
    if (form.profile) next.set("profile", form.profile);
    if (form.server) next.set("server", form.server);
    if (form.decision) next.set("decision", form.decision);
    if (form.since) next.set("since", fromLocalInput(form.since));
    if (form.until) next.set("until", fromLocalInput(form.until));
    setParams(next);
  };
  const openEvent = (id: number | null) => {
    const next = new URLSearchParams(params);
    if (id == null) next.delete("event");
    else next.set("event", String(id));
    setParams(next);
  };
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm((f) => ({ ...f, [k]: e.target.value }));
  const shownEvent = eventId ? loaded.find((e) => String(e.id) === eventId) : undefined;

  return (
    <>
      <PageHead title={t("audit.title")} subtitle={t("audit.subtitle")}>
        <label className="checkbox">
          <input type="checkbox" checked={tail} onChange={(e) => setTail(e.target.checked)} disabled={!!filter.until} />
          {t("audit.liveTail")}
        </label>
      </PageHead>
      <form className="card" onSubmit={apply} aria-label={t("audit.filters")}>
        <div className="form-row">
          <div className="field">
            <label htmlFor={ids.kind}>{t("audit.kind")}</label>
            <input id={ids.kind} type="text" list={ids.kinds} value={form.kind} onChange={set("kind")} placeholder="mcp.*" spellCheck={false} />
            <datalist id={ids.kinds}>{KIND_PREFIXES.map((k) => <option key={k} value={k} />)}</datalist>
          </div>
          <div className="field">
            <label htmlFor={ids.profile}>{t("audit.profile")}</label>
            <select id={ids.profile} value={form.profile} onChange={set("profile")}>
              <option value="">{t("common.all")}</option>
              {profiles.data?.map((p) => <option key={p.slug} value={p.slug}>{p.slug}</option>)}
              {form.profile && !profiles.data?.some((p) => p.slug === form.profile) && <option value={form.profile}>{form.profile}</option>}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.server}>{t("audit.server")}</label>
            <select id={ids.server} value={form.server} onChange={set("server")}>
              <option value="">{t("common.all")}</option>
              {servers.data?.map((s) => <option key={s.name} value={s.name}>{s.name}</option>)}
              {form.server && !servers.data?.some((s) => s.name === form.server) && <option value={form.server}>{form.server}</option>}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.decision}>{t("audit.outcome")}</label>
            <select id={ids.decision} value={form.decision} onChange={set("decision")}>
              <option value="">{t("common.all")}</option>
              {DECISIONS.map((d) => <option key={d} value={d}>{t(`audit.outcomes.${d}`)}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.since}>{t("audit.since")}</label>
            <input id={ids.since} type="datetime-local" value={form.since} onChange={set("since")} />
          </div>
          <div className="field">
            <label htmlFor={ids.until}>{t("audit.until")}</label>
            <input id={ids.until} type="datetime-local" value={form.until} onChange={set("until")} />
          </div>
        </div>
        <div className="row">
          <button type="submit" className="primary">{t("audit.apply")}</button>
          <button type="button" onClick={() => setParams(new URLSearchParams())}>{t("audit.clear")}</button>
        </div>
      </form>
      <div className="card">
        {pages.isPending && <Loading />}
        {pages.isError && <ErrorNote error={pages.error} />}
        {pages.data && loaded.length === 0 && <Empty>{t("audit.empty")}</Empty>}
        {loaded.length > 0 && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("audit.time")}</th>
                  <th scope="col">{t("audit.kind")}</th>
                  <th scope="col">{t("audit.actor")}</th>
                  <th scope="col">{t("audit.profile")}</th>
                  <th scope="col">{t("audit.server")}</th>
                  <th scope="col">{t("audit.outcome")}</th>
                  <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
                </tr>
              </thead>
              <tbody>
                {loaded.map((e) => {
                  const deny = isDenial(e.outcome) ? denyingPlugin(e) : {};
                  return (
                    <tr key={e.id}>
                      <td className="small">{fmtTime(e.time_ms)}</td>
                      <td className="mono small">
                        {e.kind}
                        {toolOf(e.detail) && <div className="muted">{toolOf(e.detail)}</div>}
                      </td>
                      <td className="mono small">{e.actor}</td>
                      <td>{e.profile ?? "—"}</td>
                      <td>{e.server ?? "—"}</td>
                      <td>
                        <Outcome o={e.outcome} />
                        {deny.plugin && (
                          <div className="small">
                            {t("audit.byPlugin")} <Link href={`/plugins/${encodeURIComponent(deny.plugin)}`}>{deny.plugin}</Link>
                          </div>
                        )}
                      </td>
                      <td>
                        <button type="button" className="small" onClick={() => openEvent(e.id)} aria-label={t("audit.detailsOf", { id: e.id })}>
                          {t("audit.details")}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {pages.hasNextPage && (
          <button type="button" style={{ marginTop: "0.75rem" }} disabled={pages.isFetchingNextPage} onClick={() => void pages.fetchNextPage()}>
            {pages.isFetchingNextPage ? t("common.loading") : t("audit.loadOlder")}
          </button>
        )}
      </div>
      {eventId && <EventDrawer id={eventId} event={shownEvent} onClose={() => openEvent(null)} />}
    </>
  );
}

/** The tool a tool-call event names, if any (shown under its kind). */
function toolOf(detail: unknown): string | null {
  const tool = detail && typeof detail === "object" ? (detail as { tool?: unknown }).tool : null;
  return typeof tool === "string" ? tool : null;
}
