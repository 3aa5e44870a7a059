import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useParams } from "wouter";
import { api, call, type Profile } from "../api/client";
import { keys, useIsAdmin, usePlugins, useServers } from "../api/queries";
import { ErrorNote, Loading, LoadCurrent, PageHead } from "../components/common";
import { ConfirmDialog, DeleteWithStateDialog } from "../components/ConfirmDialog";
import { IconDown, IconUp, IconX } from "../components/icons";
import { PipelineView } from "../components/Pipeline";
import { ToolPlayground } from "../components/ToolPlayground";
import { toast } from "../components/toasts";
import { absoluteEndpoint, TokenReveal, type Reveal } from "../components/TokenReveal";
import { CallsChart } from "../components/CallsChart";
import { CopyBlock } from "../components/CopyBlock";
import { fmtTime } from "../format";
import { ToolSwitches } from "../components/ToolSwitches";

function RenameForm({ profile }: { profile: Profile }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [name, setName] = useState(profile.name);
  const id = useId();
  useEffect(() => setName(profile.name), [profile.name]);
  const rename = useMutation({
    mutationFn: () => call(api.PATCH("/api/profiles/{slug}", { params: { path: { slug: profile.slug } }, body: { name } })),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      qc.setQueryData(keys.profile(profile.slug), p);
      void qc.invalidateQueries({ queryKey: keys.profiles });
      toast(t("profile.renamed"), "ok");
    },
  });
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        rename.mutate();
      }}
    >
      <div className="field" style={{ flex: 1 }}>
        <label htmlFor={id}>{t("profiles.displayName")}</label>
        <input id={id} type="text" value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} />
      </div>
      <button type="submit" disabled={rename.isPending || name === profile.name}>
        {t("profile.rename")}
      </button>
      <div style={{ width: "100%" }}>
        <ErrorNote error={rename.error} />
      </div>
    </form>
  );
}

/** The ordered server list; a refusal (409 name collision, 422) is shown next to it. */
function ServersEditor({ profile }: { profile: Profile }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const all = useServers();
  const [list, setList] = useState<string[]>(profile.servers);
  const [pick, setPick] = useState("");
  const [deleteState, setDeleteState] = useState(false);
  const pickId = useId();
  // The list the edit started from: saved against it (If-Match), so a change made meanwhile is refused (412)
  // instead of undone. A newer list replaces the edit only while it is unedited.
  const [base, setBase] = useState({ etag: profile.servers_etag, servers: profile.servers });
  const reload = () => {
    setBase({ etag: profile.servers_etag, servers: profile.servers });
    setList(profile.servers);
    save.reset();
  };
  useEffect(() => {
    if (profile.servers_etag === base.etag) return;
    if (list.join("\n") === base.servers.join("\n")) reload();
  }, [profile.servers_etag]); // eslint-disable-line react-hooks/exhaustive-deps
  const save = useMutation({
    mutationFn: () =>
      call(
        api.PUT("/api/profiles/{slug}/servers", {
          params: { path: { slug: profile.slug }, header: { "If-Match": base.etag } },
          body: { servers: list, delete_state: deleteState },
        }),
      ),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      setBase({ etag: p.servers_etag, servers: p.servers });
      setList(p.servers);
      qc.setQueryData(keys.profile(profile.slug), p);
      void qc.invalidateQueries({ queryKey: keys.profiles });
      setDeleteState(false);
      toast(t("profile.serversSaved"), "ok");
    },
  });
  const available = (all.data ?? []).map((s) => s.name).filter((n) => !list.includes(n));
  const move = (i: number, d: number) => {
    const next = [...list];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    setList(next);
  };
  const dirty = list.join("\n") !== profile.servers.join("\n");
  return (
    <section className="card" aria-labelledby="servers-h">
      <h2 id="servers-h">{t("profile.servers")}</h2>
      <p className="muted small">{t("profile.serversHelp")}</p>
      {list.length === 0 ? (
        <p className="muted">{t("profiles.noServers")}</p>
      ) : (
        <ol className="ordered-list" aria-label={t("profile.servers")}>
          {list.map((s, i) => (
            <li key={s}>
              <span className="pos">{i + 1}</span>
              <Link href={`/servers/${encodeURIComponent(s)}`} style={{ flex: 1 }}>
                {s}
              </Link>
              <button type="button" className="icon small" disabled={i === 0} onClick={() => move(i, -1)} aria-label={t("profile.moveUp", { name: s })}>
                <IconUp />
              </button>
              <button type="button" className="icon small" disabled={i === list.length - 1} onClick={() => move(i, 1)} aria-label={t("profile.moveDown", { name: s })}>
                <IconDown />
              </button>
              <button type="button" className="icon small" onClick={() => setList(list.filter((x) => x !== s))} aria-label={t("profile.removeServer", { name: s })}>
                <IconX />
              </button>
            </li>
          ))}
        </ol>
      )}
      <div className="inline-form" style={{ marginTop: "0.75rem" }}>
        <div className="field">
          <label htmlFor={pickId}>{t("profile.addServer")}</label>
          <select id={pickId} value={pick} onChange={(e) => setPick(e.target.value)}>
            <option value="">{t("profile.chooseServer")}</option>
            {available.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <button
          type="button"
          disabled={!pick}
          onClick={() => {
            setList([...list, pick]);
            setPick("");
          }}
        >
          {t("common.add")}
        </button>
      </div>
      <label className="checkbox" style={{ marginTop: "0.75rem" }}>
        <input type="checkbox" checked={deleteState} onChange={(e) => setDeleteState(e.target.checked)} />
        {t("profile.deleteState")}
      </label>
      <div aria-live="polite">
        <ErrorNote error={save.error} title={t("profile.serversRefused")} />
        <LoadCurrent error={save.error} reset={reload} queryKey={keys.profile(profile.slug)} />
      </div>
      <div className="row" style={{ marginTop: "0.5rem" }}>
        <button type="button" className="primary" disabled={!dirty || save.isPending} onClick={() => save.mutate()}>
          {t("profile.saveServers")}
        </button>
        {dirty && (
          <button type="button" onClick={reload}>
            {t("common.reset")}
          </button>
        )}
      </div>
    </section>
  );
}

export function ProfileDetail() {
  const { t } = useTranslation();
  const { slug } = useParams<{ slug: string }>();
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const isAdmin = useIsAdmin();
  const q = useQuery({
    queryKey: keys.profile(slug),
    queryFn: () => call(api.GET("/api/profiles/{slug}", { params: { path: { slug } } })),
    meta: { suppressErrorToast: true },
  });
  const plugins = usePlugins(isAdmin);
  const [reveal, setReveal] = useState<Reveal | null>(null);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteState, setDeleteState] = useState(false);
  const rotate = useMutation({
    mutationFn: () => call(api.POST("/api/profiles/{slug}/token", { params: { path: { slug } } })),
    meta: { suppressErrorToast: true },
    onSuccess: (r) => {
      setConfirmRotate(false);
      if (q.data) setReveal({ name: q.data.slug, endpoint: q.data.endpoint, token: r.token });
    },
  });
  const del = useMutation({
    mutationFn: () =>
      call(api.DELETE("/api/profiles/{slug}", { params: { path: { slug }, query: deleteState ? { delete_state: true } : {} } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      qc.removeQueries({ queryKey: keys.profile(slug) });
      void qc.invalidateQueries({ queryKey: keys.profiles });
      toast(t("profile.deleted", { name: slug }), "ok");
      navigate("/profiles");
    },
  });
  if (q.isPending) return <Loading />;
  if (q.isError)
    return (
      <>
        <PageHead title={slug} />
        <ErrorNote error={q.error} />
        <Link href="/profiles">{t("profile.back")}</Link>
      </>
    );
  const p = q.data;
  return (
    <>
      <PageHead title={p.name || p.slug} subtitle={`${t("profiles.slug")}: ${p.slug} · ${t("common.created")} ${fmtTime(p.created_at)}`}>
        <Link className="button" href={`/audit?profile=${encodeURIComponent(p.slug)}`}>
          {t("profile.audit")}
        </Link>
      </PageHead>
      <div className="grid grid-2">
        <div>
          <section className="card" aria-labelledby="conn-h">
            <h2 id="conn-h">{t("profile.connection")}</h2>
            <CopyBlock label={t("profiles.endpoint")} value={absoluteEndpoint(p.endpoint)} rows={1} />
            <p className="muted small">{t("profile.tokenHelp")}</p>
            <button type="button" onClick={() => setConfirmRotate(true)}>
              {t("profile.rotate")}
            </button>
          </section>
          <section className="card" aria-labelledby="name-h">
            <h2 id="name-h">{t("profile.name")}</h2>
            <RenameForm profile={p} />
          </section>
          <ServersEditor profile={p} />
          <ToolSwitches slug={p.slug} />
        </div>
        <div>
          <section className="card" aria-labelledby="pipe-h">
            <h2 id="pipe-h">{t("profile.pipeline")}</h2>
            {!isAdmin && <p className="muted">{t("profile.pipelineAdminOnly")}</p>}
            {isAdmin && plugins.isPending && <Loading />}
            {plugins.data && <PipelineView plugins={plugins.data} profile={p.slug} />}
          </section>
          <ToolPlayground slug={p.slug} />
          <CallsChart title={t("charts.profileLastHour")} filter={{ profile: p.slug }} />
          <section className="card" aria-labelledby="danger-h">
            <h2 id="danger-h" className="danger-text">{t("common.dangerZone")}</h2>
            <p className="muted small">{t("profile.deleteHelp")}</p>
            <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>
              {t("profile.delete")}
            </button>
          </section>
        </div>
      </div>
      <ConfirmDialog
        open={confirmRotate}
        title={t("profile.rotateTitle")}
        body={t("profile.rotateBody")}
        confirmLabel={t("profile.rotate")}
        busy={rotate.isPending}
        error={rotate.error}
        onConfirm={() => rotate.mutate()}
        onClose={() => {
          setConfirmRotate(false);
          rotate.reset();
        }}
      />
      <DeleteWithStateDialog
        open={confirmDelete}
        title={t("profile.deleteTitle", { name: p.slug })}
        text={t("profile.deleteBody")}
        name={p.slug}
        confirmLabel={t("profile.delete")}
        deleteState={deleteState}
        onDeleteState={setDeleteState}
        mutation={del}
        onClose={() => setConfirmDelete(false)}
      />
      <TokenReveal reveal={reveal} onDone={() => setReveal(null)} />
    </>
  );
}
