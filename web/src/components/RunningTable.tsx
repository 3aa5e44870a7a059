import { useTranslation } from "react-i18next";
import type { Running } from "../api/client";
import { fmtBytes, fmtDuration } from "../format";

export function RunningTable({ running }: { running: Running[] }) {
  const { t } = useTranslation();
  if (!running.length) return <span className="muted small">{t("servers.idle")}</span>;
  return (
    // Narrow cards scroll the table sideways rather than cut it.
    <div className="table-wrap" tabIndex={0} role="region" aria-label={t("server.running")}>
      <table className="small">
        <thead>
          <tr>
            <th scope="col">{t("servers.profile")}</th>
            <th scope="col" className="num">{t("servers.pid")}</th>
            <th scope="col" className="num">{t("servers.uptime")}</th>
            <th scope="col" className="num">{t("servers.restarts")}</th>
            <th scope="col" className="num">{t("servers.memory")}</th>
          </tr>
        </thead>
        <tbody>
          {running.map((r, i) => (
            <tr key={r.profile + i}>
              <td>
                {r.profile}
                {r.per_session && <span className="badge" style={{ marginLeft: 4 }}>{t("servers.perSession")}</span>}
                {r.address && <div className="mono muted">{r.address}</div>}
              </td>
              <td className="num">{r.pid ?? "—"}</td>
              <td className="num">{fmtDuration(r.uptime_s)}</td>
              <td className="num">
                {r.restarts > 0 ? <span className="badge warn">{r.restarts}</span> : r.restarts}
              </td>
              <td className="num">{fmtBytes(r.memory_bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
