import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useParams } from "wouter";
import { api, call, type Server } from "../api/client";
import { keys, useIsAdmin } from "../api/queries";
import { ErrorNote, Loading, PageHead } from "../components/common";
import { DeleteWithStateDialog } from "../components/ConfirmDialog";
import { CallsChart } from "../components/CallsChart";
import { ServerAccountCard } from "../components/ConnectedAccount";
import { RunningTable } from "../components/RunningTable";
import { ServerLogs } from "../components/ServerLogs";
import { toast } from "../components/toasts";
import { fmtBytes } from "../format";
import { lines } from "./ServerNew";

function EgressEditor({ server }: { server: Server }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const id = useId();
  const [text, setText] = useState(server.egress.join("\n"));
  useEffect(() => setText(server.egress.join("\n")), [server.egress]);
  const save = useMutation({
    mutationFn: () => call(api.PATCH("/api/servers/{name}", { params: { path: { name: server.name } }, body: { egress: lines(text) } })),
    meta: { suppressErrorToast: true },
    onSuccess: (s) => {
      qc.setQueryData(keys.server(server.name), s);
      void qc.invalidateQueries({ queryKey: keys.servers });
      toast(t("server.egressSaved"), "ok");
    },
  });
  const dirty = lines(text).join("\n") !== server.egress.join("\n");
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <div className="field">
        <label htmlFor={id}>{t("server.egressHosts")}</label>
        <textarea id={id} value={text} rows={4} spellCheck={false} aria-describedby={id + "-h"} onChange={(e) => setText(e.target.value)} />
        <span className="hint" id={id + "-h"}>{t("serverNew.egressHint")}</span>
      </div>
      <ErrorNote error={save.error} />
      <button type="submit" disabled={!dirty || save.isPending}>
        {t("server.saveEgress")}
      </button>
    </form>
  );
}

export function ServerDetail() {
  const { t } = useTranslation();
  const { name } = useParams<{ name: string }>();
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const isAdmin = useIsAdmin();
  const q = useQuery({
    queryKey: keys.server(name),
    queryFn: () => call(api.GET("/api/servers/{name}", { params: { path: { name } } })),
    refetchInterval: 5000,
    refetchIntervalInBackground: false,
    meta: { suppressErrorToast: true },
  });
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteState, setDeleteState] = useState(false);
  const restart = useMutation({
    mutationFn: () => call(api.POST("/api/servers/{name}/restart", { params: { path: { name } } })),
    onSuccess: (r) => {
      toast(t("server.restarted", { n: r.stopped }), "ok");
      void qc.invalidateQueries({ queryKey: keys.server(name) });
    },
  });
  const del = useMutation({
    mutationFn: () => call(api.DELETE("/api/servers/{name}", { params: { path: { name }, query: deleteState ? { delete_state: true } : {} } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      qc.removeQueries({ queryKey: keys.server(name) });
      void qc.invalidateQueries({ queryKey: keys.servers });
      toast(t("server.deleted", { name }), "ok");
      navigate("/servers");
    },
  });
  const consent = useMutation({
    mutationFn: () => call(api.POST("/api/servers/{name}/consent", { params: { path: { name } } })),
    meta: { suppressErrorToast: true },
    onSuccess: (r) => {
      toast(t("server.consented", { changes: r.changes.join("; ") }), "ok");
      void qc.invalidateQueries({ queryKey: keys.server(name) });
      void qc.invalidateQueries({ queryKey: keys.servers });
    },
  });
  if (q.isPending) return <Loading />;
  if (q.isError)
    return (
      <>
        <PageHead title={name} />
        <ErrorNote error={q.error} />
        <Link href="/servers">{t("server.back")}</Link>
      </>
    );
  const s = q.data;
  return (
    <>
      <PageHead title={s.name} subtitle={t("server.subtitle")}>
        <Link className="button" href={`/credentials?server=${encodeURIComponent(s.name)}`}>{t("nav.credentials")}</Link>
        <Link className="button" href={`/audit?server=${encodeURIComponent(s.name)}`}>{t("profile.audit")}</Link>
        {isAdmin && (
          <button type="button" onClick={() => restart.mutate()} disabled={restart.isPending}>
            {t("server.restart")}
          </button>
        )}
      </PageHead>
      {s.consent_pending && (
        <section className="card warn-card" aria-labelledby="consent-h" style={{ marginBottom: "1rem" }}>
          <h2 id="consent-h">{t("server.consentTitle")}</h2>
          <p>{t("server.consentHelp", { entry: s.catalog ?? "" })}</p>
          <ErrorNote error={consent.error} />
          {isAdmin && (
            <button type="button" className="primary" onClick={() => consent.mutate()} disabled={consent.isPending}>
              {t("server.consent")}
            </button>
          )}
        </section>
      )}
      <ServerAccountCard server={s} />
      <div className="grid grid-2">
        <section className="card" aria-labelledby="details-h">
          <h2 id="details-h">{t("server.details")}</h2>
          <dl className="kv">
            <dt>{t("servers.transport")}</dt>
            <dd><span className="badge">{s.transport}</span></dd>
            {s.target != null && (
              <>
                <dt>{t("servers.target")}</dt>
                <dd className="mono small">{s.target}</dd>
              </>
            )}
            <dt>{t("serverNew.prefix")}</dt>
            <dd className="mono">{s.prefix || t("server.noPrefix")}</dd>
            <dt>{t("servers.perSession")}</dt>
            <dd>{s.per_session ? t("common.yes") : t("common.no")}</dd>
          </dl>
          {s.state.length > 0 && (
            <>
              <h3 style={{ marginTop: "1rem" }}>{t("server.state")}</h3>
              <table className="small">
                <thead>
                  <tr>
                    <th scope="col">{t("servers.profile")}</th>
                    <th scope="col" className="num">{t("server.disk")}</th>
                    <th scope="col" className="num">{t("server.limit")}</th>
                  </tr>
                </thead>
                <tbody>
                  {s.state.map((st) => (
                    <tr key={st.profile}>
                      <td>{st.profile}</td>
                      <td className="num">{fmtBytes(st.disk_bytes)}</td>
                      <td className="num">{st.limit_bytes == null ? t("server.noLimit") : fmtBytes(st.limit_bytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </section>
        <section className="card" aria-labelledby="run-h">
          <h2 id="run-h">{t("server.running")}</h2>
          <RunningTable running={s.running} />
          <p className="muted small" style={{ marginTop: "0.5rem" }}>{t("servers.polling")}</p>
        </section>
        <section className="card" aria-labelledby="egress-h">
          <h2 id="egress-h">{t("servers.egress")}</h2>
          <p className="muted small">{t("server.egressHelp")}</p>
          {s.transport === "toolpack" && <p className="muted small">{t("server.egressFromCatalog")}</p>}
          {isAdmin && s.transport !== "toolpack" ? (
            <EgressEditor server={s} />
          ) : s.egress.length ? (
            <ul>{s.egress.map((h) => <li key={h} className="mono">{h}</li>)}</ul>
          ) : (
            <p className="muted">{t("servers.noEgress")}</p>
          )}
        </section>
        {isAdmin && (
          <section className="card" aria-labelledby="sdanger-h">
            <h2 id="sdanger-h" className="danger-text">{t("common.dangerZone")}</h2>
            <p className="muted small">{t("server.deleteHelp")}</p>
            <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>
              {t("server.delete")}
            </button>
          </section>
        )}
      </div>
      <div style={{ marginTop: "1rem" }}>
        <CallsChart title={t("charts.serverLastHour")} filter={{ server: s.name }} />
      </div>
      {isAdmin && (
        <section className="card" aria-labelledby="logs-h" style={{ marginTop: "1rem" }}>
          <h2 id="logs-h">{t("logs.title")}</h2>
          <p className="muted small">{t("logs.help")}</p>
          <ServerLogs server={s.name} />
        </section>
      )}
      <DeleteWithStateDialog
        open={confirmDelete}
        title={t("server.deleteTitle", { name: s.name })}
        text={t("server.deleteBody")}
        name={s.name}
        confirmLabel={t("server.delete")}
        deleteState={deleteState}
        onDeleteState={setDeleteState}
        mutation={del}
        onClose={() => setConfirmDelete(false)}
      />
    </>
  );
}
