import { useQuery } from "@tanstack/react-query";
import { useId } from "react";
import { useTranslation } from "react-i18next";
import { api, call } from "../api/client";
import { keys } from "../api/queries";
import { fmtClock, fmtNum, fmtUs } from "../format";
import { ErrorNote, Loading } from "./common";

/** Which calls a chart counts (the API's filters). */
export type CallsFilter = { profile?: string; server?: string; plugin?: string };

/**
 * The last hour of tool calls, minute by minute, from the gateway's per-minute counts: calls (denials stacked
 * on top in red) and the slowest call. With a filter: one profile's, one server's, or the denials one plugin
 * decided.
 */
export function CallsChart({ title, filter = {} }: { title: string; filter?: CallsFilter }) {
  const headingId = useId();
  const { t } = useTranslation();
  const q = useQuery({
    queryKey: [...keys.series, "hour", filter],
    queryFn: () => call(api.GET("/api/metrics/tool-calls", { params: { query: filter } })),
    refetchInterval: 60_000,
    refetchIntervalInBackground: false,
  });
  const points = q.data?.points ?? [];
  const calls = points.reduce((n, p) => n + p.calls, 0);
  const denials = points.reduce((n, p) => n + p.denials, 0);
  const errors = points.reduce((n, p) => n + p.errors, 0);
  const slowest = points.reduce((n, p) => Math.max(n, p.latency_max_us), 0);
  const max = Math.max(1, ...points.map((p) => p.calls));
  const W = 600;
  const H = 80;
  const bar = points.length ? W / points.length : W;
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <h2 id={headingId}>{title}</h2>
        {q.data && <span className="muted small">{t("overview.lastHourTotals", { count: calls, calls: fmtNum(calls), denials: fmtNum(denials), errors: fmtNum(errors) })}</span>}
      </div>
      {q.isPending && <Loading />}
      {q.isError && <ErrorNote error={q.error} />}
      {q.data && (
        <>
          <svg
            className="minute-chart"
            viewBox={`0 0 ${W} ${H}`}
            preserveAspectRatio="none"
            role="img"
            aria-label={t("overview.lastHourAlt", { count: calls, calls, denials, max, slowest: fmtUs(slowest) })}
          >
            {points.map((p, i) => {
              const h = (p.calls / max) * (H - 2);
              const d = (p.denials / max) * (H - 2);
              return (
                <g key={p.t}>
                  <title>{`${fmtClock(p.t)}: ${t("overview.minuteTitle", { calls: p.calls, denials: p.denials, avg: fmtUs(p.latency_avg_us) })}`}</title>
                  <rect className="calls" x={i * bar + 0.5} y={H - h} width={Math.max(1, bar - 1)} height={h} />
                  {d > 0 && <rect className="denials" x={i * bar + 0.5} y={H - h} width={Math.max(1, bar - 1)} height={d} />}
                </g>
              );
            })}
          </svg>
          <div className="row muted small" style={{ justifyContent: "space-between" }}>
            <span>{points.length ? fmtClock(points[0].t) : ""}</span>
            <span>{t("overview.slowest", { time: slowest ? fmtUs(slowest) : "—" })}</span>
            <span>{t("overview.now")}</span>
          </div>
        </>
      )}
    </section>
  );
}
