import { useQueries, useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { denyingPlugin, fetchAudit, fetchDenials } from "../api/audit";
import { api, call, type AuditEvent } from "../api/client";
import { keys, useIsAdmin, usePlugins, useProfiles, useServers } from "../api/queries";
import { CallsChart } from "../components/CallsChart";
import { ErrorNote, Loading, PageHead } from "../components/common";
import { IconCheck } from "../components/icons";
import { fmtAgo, fmtNum, fmtTime } from "../format";

const DAY = 86_400_000;

function Stat({ label, value, href }: { label: string; value: number | undefined; href: string }) {
  return (
    <div className="card stat">
      <Link href={href}>
        <div className="value">{value === undefined ? "…" : fmtNum(value)}</div>
        <div className="label">{label}</div>
      </Link>
    </div>
  );
}

function Quarantined() {
  const { t } = useTranslation();
  const plugins = usePlugins();
  const metrics = useQueries({
    queries: (plugins.data ?? []).map((p) => ({
      queryKey: keys.metrics(p.name),
      queryFn: () => call(api.GET("/api/plugins/{name}/metrics", { params: { path: { name: p.name } } })),
      meta: { suppressErrorToast: true },
    })),
  });
  const bad = (plugins.data ?? [])
    .map((p, i) => ({ p, m: metrics[i]?.data }))
    .filter((x) => x.m?.quarantined);
  if (!bad.length) return null;
  return (
    <section className="alert error" aria-labelledby="quarantine-h">
      <h2 id="quarantine-h" className="danger-text">
        {t("overview.quarantinedTitle", { n: bad.length })}
      </h2>
      <p>{t("overview.quarantinedHelp")}</p>
      <ul>
        {bad.map(({ p, m }) => (
          <li key={p.name}>
            <Link href={`/plugins/${encodeURIComponent(p.name)}`}>{p.name}</Link> <span className="muted">({p.kind})</span>
            {m?.last_error && <div className="small mono">{m.last_error}</div>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Denials() {
  const { t } = useTranslation();
  const q = useQuery({
    queryKey: [...keys.audit, "denials", "recent"],
    queryFn: () => fetchDenials({}, 10),
    refetchInterval: 30_000,
  });
  return (
    <section className="card" aria-labelledby="denials-h">
      <div className="card-head">
        <h2 id="denials-h">{t("overview.denials")}</h2>
        <Link href="/audit?decision=deny">{t("overview.allDenials")}</Link>
      </div>
      {q.isPending && <Loading />}
      {q.isError && <ErrorNote error={q.error} />}
      {q.data && q.data.length === 0 && <p className="muted">{t("overview.noDenials")}</p>}
      {q.data && q.data.length > 0 && (
        <ul className="checklist">
          {q.data.map((e) => (
            <DenialRow key={e.id} e={e} />
          ))}
        </ul>
      )}
    </section>
  );
}

function DenialRow({ e }: { e: AuditEvent }) {
  const { t } = useTranslation();
  const { plugin, reason } = denyingPlugin(e);
  return (
    <li>
      <span className="badge danger">{e.outcome}</span>
      <span style={{ flex: 1 }}>
        <Link href={`/audit?decision=${encodeURIComponent(e.outcome)}&event=${e.id}`}>{e.kind}</Link>
        {e.profile && <span className="muted small"> · {e.profile}</span>}
        {e.server && <span className="muted small"> · {e.server}</span>}
        {plugin && (
          <span className="small">
            {" · "}
            {t("audit.byPlugin")} <Link href={`/plugins/${encodeURIComponent(plugin)}`}>{plugin}</Link>
          </span>
        )}
        {reason && <div className="small muted">{reason}</div>}
      </span>
      <time className="muted small" dateTime={new Date(e.time_ms).toISOString()} title={fmtTime(e.time_ms)}>
        {fmtAgo(e.time_ms)}
      </time>
    </li>
  );
}

function Checklist({ servers, profiles, connected, isAdmin }: { servers: number; profiles: number; connected: boolean; isAdmin: boolean }) {
  const { t } = useTranslation();
  const steps = [
    { done: servers > 0, label: t("overview.stepServer"), href: isAdmin ? "/servers/new" : "/servers" },
    { done: profiles > 0, label: t("overview.stepProfile"), href: "/profiles" },
    { done: connected, label: t("overview.stepConnect"), href: "/profiles" },
  ];
  return (
    <section className="card" aria-labelledby="start-h">
      <h2 id="start-h">{t("overview.gettingStarted")}</h2>
      <ol className="checklist">
        {steps.map((s) => (
          <li key={s.label}>
            <span className={`check ${s.done ? "done" : ""}`} aria-hidden="true">
              {s.done && <IconCheck />}
            </span>
            <Link href={s.href}>{s.label}</Link>
            <span className={`badge ${s.done ? "ok" : ""}`}>{s.done ? t("overview.done") : t("overview.todo")}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

/** Tool calls of the last 7 days per day and hour (local time), from the gateway's hourly counts. */
function Heatmap() {
  const { t, i18n } = useTranslation();
  const q = useQuery({
    queryKey: [...keys.series, "heatmap"],
    queryFn: async () => {
      const start = new Date();
      start.setHours(0, 0, 0, 0);
      const since = start.getTime() - 6 * DAY;
      const series = await call(api.GET("/api/metrics/tool-calls", { params: { query: { since, until: Date.now(), step: 3600 } } }));
      const grid = Array.from({ length: 7 }, () => new Array<number>(24).fill(0));
      let total = 0;
      for (const p of series.points) {
        // Steps are whole hours since the epoch: local hours where the time zone is whole hours off UTC.
        const d = new Date(p.t);
        const day = Math.floor((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - since) / DAY);
        if (day >= 0 && day < 7) {
          grid[day][d.getHours()] += p.calls;
          total += p.calls;
        }
      }
      return { grid, since, total };
    },
    staleTime: 60_000,
  });
  const dayName = (i: number) =>
    q.data ? new Date(q.data.since + i * DAY + DAY / 2).toLocaleDateString(i18n.language, { weekday: "short" }) : "";
  const max = q.data ? Math.max(1, ...q.data.grid.flat()) : 1;
  const level = (n: number) => (n === 0 ? 0 : Math.min(4, Math.ceil((n / max) * 4)));
  return (
    <section className="card" aria-labelledby="heat-h">
      <div className="card-head">
        <h2 id="heat-h">{t("overview.activity")}</h2>
        {q.data && (
          <span className="muted small">
            {t("overview.activityTotal", { n: q.data.total })}
          </span>
        )}
      </div>
      {q.isPending && <Loading />}
      {q.isError && <ErrorNote error={q.error} />}
      {q.data && (
        <>
          <div className="heatmap" role="img" aria-label={t("overview.activityAlt", { n: q.data.total })}>
            <span />
            {Array.from({ length: 24 }, (_, h) => (
              <span key={h} className="hour">
                {h % 3 === 0 ? h : ""}
              </span>
            ))}
            {q.data.grid.map((row, d) => (
              <HeatRow key={d} label={dayName(d)} row={row} level={level} />
            ))}
          </div>
          <details style={{ marginTop: "0.75rem" }}>
            <summary>{t("overview.activityTable")}</summary>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t("overview.day")}</th>
                    <th scope="col" className="num">{t("overview.calls")}</th>
                    <th scope="col">{t("overview.busiestHour")}</th>
                  </tr>
                </thead>
                <tbody>
                  {q.data.grid.map((row, d) => {
                    const sum = row.reduce((a, b) => a + b, 0);
                    const peak = row.indexOf(Math.max(...row));
                    return (
                      <tr key={d}>
                        <td>{dayName(d)}</td>
                        <td className="num">{fmtNum(sum)}</td>
                        <td>{sum ? `${peak}:00–${peak + 1}:00 (${row[peak]})` : "—"}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </section>
  );
}

function HeatRow({ label, row, level }: { label: string; row: number[]; level: (n: number) => number }) {
  return (
    <>
      <span className="day">{label}</span>
      {row.map((n, h) => (
        <span key={h} className={`cell l${level(n)}`} title={`${label} ${h}:00 — ${n}`} />
      ))}
    </>
  );
}

export function Overview() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const profiles = useProfiles();
  const servers = useServers(true);
  const plugins = usePlugins(isAdmin);
  const connected = useQuery({
    queryKey: [...keys.audit, "any-mcp"],
    queryFn: () => fetchAudit({ kind: "mcp.*", limit: 1 }),
    meta: { suppressErrorToast: true },
  });
  const running = servers.data?.reduce((n, s) => n + s.running.length, 0);
  return (
    <>
      <PageHead title={t("overview.title")} subtitle={t("overview.subtitle")} />
      {isAdmin && <Quarantined />}
      <div className="grid grid-4" style={{ marginBottom: "1rem" }}>
        <Stat label={t("overview.profiles")} value={profiles.data?.length} href="/profiles" />
        <Stat label={t("overview.servers")} value={servers.data?.length} href="/servers" />
        <Stat label={t("overview.running")} value={running} href="/servers" />
        {isAdmin && <Stat label={t("overview.plugins")} value={plugins.data?.length} href="/plugins" />}
      </div>
      <div className="grid grid-2">
        {profiles.data && servers.data && (
          <Checklist
            servers={servers.data.length}
            profiles={profiles.data.length}
            connected={(connected.data?.items.length ?? 0) > 0}
            isAdmin={isAdmin}
          />
        )}
        <Denials />
      </div>
      <CallsChart title={t("overview.lastHour")} />
      <Heatmap />
    </>
  );
}
