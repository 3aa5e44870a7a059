import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { useIsAdmin, useServers } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { RunningTable } from "../components/RunningTable";

export function Servers() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const servers = useServers(true);
  return (
    <>
      <PageHead title={t("servers.title")} subtitle={t("servers.subtitle")}>
        {isAdmin && (
          <Link className="button primary" href="/servers/new">
            {t("servers.add")}
          </Link>
        )}
      </PageHead>
      <div className="card">
        {servers.isPending && <Loading />}
        {servers.isError && <ErrorNote error={servers.error} />}
        {servers.data?.length === 0 && <Empty>{t("servers.empty")}</Empty>}
        {!!servers.data?.length && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("servers.name")}</th>
                  <th scope="col">{t("servers.transport")}</th>
                  {isAdmin && <th scope="col">{t("servers.target")}</th>}
                  <th scope="col">{t("servers.egress")}</th>
                  <th scope="col">{t("servers.status")}</th>
                </tr>
              </thead>
              <tbody>
                {servers.data.map((s) => (
                  <tr key={s.name}>
                    <td>
                      <Link href={`/servers/${encodeURIComponent(s.name)}`}>{s.name}</Link>
                      {s.prefix && s.prefix !== s.name && <div className="muted small">{t("servers.prefixIs", { prefix: s.prefix })}</div>}
                    </td>
                    <td>
                      <span className="badge">{s.transport}</span>
                    </td>
                    {isAdmin && <td className="mono small">{s.target ?? "—"}</td>}
                    <td className="small">{s.egress.length ? s.egress.join(", ") : <span className="muted">{t("servers.noEgress")}</span>}</td>
                    <td>
                      <RunningTable running={s.running} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p className="muted small" style={{ marginTop: "0.5rem" }}>{t("servers.polling")}</p>
      </div>
    </>
  );
}
