import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "wouter";
import { allPages, api, call, type Credential } from "../api/client";
import { keys, useProfiles, useServers } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { toast } from "../components/toasts";
import { fmtTime } from "../format";

/**
 * The set form. The secret is write-only: an uncontrolled password field read once when the
 * request is sent (it never enters React state, the mutation's variables, a URL or a toast)
 * and cleared right after.
 */
function SetCredentialForm({ defaultServer, defaultProfile }: { defaultServer: string; defaultProfile: string }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const servers = useServers();
  const profiles = useProfiles();
  const secretRef = useRef<HTMLInputElement>(null);
  const [f, setF] = useState({ server: defaultServer, profile: defaultProfile, name: "", hosts: "", header: "", format: "", env_name: "" });
  const set = (k: keyof typeof f) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setF((o) => ({ ...o, [k]: e.target.value }));
  const ids = { server: useId(), profile: useId(), name: useId(), hosts: useId(), header: useId(), format: useId(), env: useId(), secret: useId() };
  const save = useMutation({
    mutationFn: async () => {
      const secret = secretRef.current?.value ?? "";
      if (secretRef.current) secretRef.current.value = "";
      return call(
        api.PUT("/api/credentials", {
          body: {
            server: f.server,
            name: f.name,
            hosts: f.hosts,
            secret,
            profile: f.profile || null,
            header: f.header || null,
            format: f.format || null,
            env_name: f.env_name || null,
          },
        }),
      );
    },
    meta: { suppressErrorToast: true },
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: keys.credentials });
      setF((o) => ({ ...o, name: "", hosts: "", header: "", format: "", env_name: "" }));
      toast(t("credentials.saved", { name: c.name, server: c.server }), "ok");
    },
  });
  return (
    <form
      className="card"
      autoComplete="off"
      aria-labelledby="set-cred-h"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <h2 id="set-cred-h">{t("credentials.set")}</h2>
      <p className="muted small">{t("credentials.setHelp")}</p>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.server}>{t("credentials.server")}</label>
          <select id={ids.server} value={f.server} onChange={set("server")} required>
            <option value="">{t("profile.chooseServer")}</option>
            {servers.data?.map((s) => <option key={s.name} value={s.name}>{s.name}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.profile}>{t("credentials.scope")}</label>
          <select id={ids.profile} value={f.profile} onChange={set("profile")}>
            <option value="">{t("credentials.serverWide")}</option>
            {profiles.data?.map((p) => <option key={p.slug} value={p.slug}>{t("credentials.onlyProfile", { name: p.slug })}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.name}>{t("credentials.name")}</label>
          <input id={ids.name} type="text" value={f.name} onChange={set("name")} required spellCheck={false} />
        </div>
      </div>
      <div className="field">
        <label htmlFor={ids.hosts}>{t("credentials.hosts")}</label>
        <input id={ids.hosts} type="text" value={f.hosts} onChange={set("hosts")} required spellCheck={false} placeholder="api.example.com, *.example.com" aria-describedby={ids.hosts + "-h"} />
        <span className="hint" id={ids.hosts + "-h"}>{t("credentials.hostsHint")}</span>
      </div>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.header}>{t("credentials.header")}</label>
          <input id={ids.header} type="text" value={f.header} onChange={set("header")} placeholder="Authorization" spellCheck={false} />
        </div>
        <div className="field">
          <label htmlFor={ids.format}>{t("credentials.format")}</label>
          <input id={ids.format} type="text" value={f.format} onChange={set("format")} placeholder="Bearer {secret}" spellCheck={false} />
        </div>
        <div className="field">
          <label htmlFor={ids.env}>{t("credentials.envName")}</label>
          <input id={ids.env} type="text" value={f.env_name} onChange={set("env_name")} spellCheck={false} placeholder={f.name ? f.name.toUpperCase().replace(/[^A-Z0-9]/g, "_") + "_TOKEN" : ""} />
        </div>
      </div>
      <div className="field">
        <label htmlFor={ids.secret}>{t("credentials.secret")}</label>
        <input id={ids.secret} ref={secretRef} type="password" autoComplete="off" required spellCheck={false} aria-describedby={ids.secret + "-h"} />
        <span className="hint" id={ids.secret + "-h"}>{t("credentials.secretHint")}</span>
      </div>
      <ErrorNote error={save.error} />
      <button type="submit" className="primary" disabled={save.isPending || !f.server || !f.name || !f.hosts}>
        {t("credentials.save")}
      </button>
    </form>
  );
}

export function Credentials() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const server = params.get("server") ?? "";
  const profile = params.get("profile") ?? "";
  const servers = useServers();
  const profiles = useProfiles();
  const list = useQuery({
    queryKey: [...keys.credentials, server, profile],
    queryFn: () =>
      allPages((after) =>
        call(api.GET("/api/credentials", { params: { query: { after, limit: 500, server: server || undefined, profile: profile || undefined } } })),
      ),
  });
  const [toDelete, setToDelete] = useState<Credential | null>(null);
  const del = useMutation({
    mutationFn: (c: Credential) =>
      call(api.DELETE("/api/credentials/{server}/{name}", { params: { path: { server: c.server, name: c.name }, query: c.profile ? { profile: c.profile } : {} } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      setToDelete(null);
      void qc.invalidateQueries({ queryKey: keys.credentials });
      toast(t("credentials.deleted"), "ok");
    },
  });
  const filterIds = { server: useId(), profile: useId() };
  const setFilter = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <>
      <PageHead title={t("credentials.title")} subtitle={t("credentials.subtitle")} />
      <div className="card">
        <div className="inline-form" style={{ marginBottom: "0.75rem" }}>
          <div className="field">
            <label htmlFor={filterIds.server}>{t("credentials.filterServer")}</label>
            <select id={filterIds.server} value={server} onChange={(e) => setFilter("server", e.target.value)}>
              <option value="">{t("common.all")}</option>
              {servers.data?.map((s) => <option key={s.name} value={s.name}>{s.name}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor={filterIds.profile}>{t("credentials.filterProfile")}</label>
            <select id={filterIds.profile} value={profile} onChange={(e) => setFilter("profile", e.target.value)}>
              <option value="">{t("common.all")}</option>
              {profiles.data?.map((p) => <option key={p.slug} value={p.slug}>{p.slug}</option>)}
            </select>
          </div>
        </div>
        {list.isPending && <Loading />}
        {list.isError && <ErrorNote error={list.error} />}
        {list.data?.length === 0 && <Empty>{t("credentials.empty")}</Empty>}
        {!!list.data?.length && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("credentials.scope")}</th>
                  <th scope="col">{t("credentials.server")}</th>
                  <th scope="col">{t("credentials.name")}</th>
                  <th scope="col">{t("credentials.hosts")}</th>
                  <th scope="col">{t("credentials.headerFormat")}</th>
                  <th scope="col">{t("credentials.envName")}</th>
                  <th scope="col">{t("credentials.placeholder")}</th>
                  <th scope="col">{t("common.updated")}</th>
                  <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((c) => (
                  <tr key={`${c.server}/${c.name}/${c.profile ?? ""}`}>
                    <td>{c.profile ? <span className="badge accent">{c.profile}</span> : <span className="badge">{t("credentials.serverWide")}</span>}</td>
                    <td><Link href={`/servers/${encodeURIComponent(c.server)}`}>{c.server}</Link></td>
                    <td>{c.name}</td>
                    <td className="mono small">{c.hosts}</td>
                    <td className="mono small">{c.header}: {c.format}</td>
                    <td className="mono small">{c.env_name}</td>
                    <td className="mono small">{c.placeholder}</td>
                    <td className="small">{fmtTime(c.updated_at)}</td>
                    <td>
                      <button type="button" className="small" onClick={() => setToDelete(c)} aria-label={t("credentials.deleteNamed", { name: c.name, server: c.server })}>
                        {t("common.delete")}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <p className="muted small" style={{ marginTop: "0.5rem" }}>{t("credentials.explain")}</p>
      </div>
      <SetCredentialForm defaultServer={server} defaultProfile={profile} />
      <ConfirmDialog
        open={!!toDelete}
        title={t("credentials.deleteTitle")}
        body={toDelete ? t("credentials.deleteBody", { name: toDelete.name, server: toDelete.server }) : ""}
        confirmLabel={t("common.delete")}
        busy={del.isPending}
        error={del.error}
        onConfirm={() => toDelete && del.mutate(toDelete)}
        onClose={() => {
          setToDelete(null);
          del.reset();
        }}
      />
    </>
  );
}
