import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Component, lazy, Suspense, useEffect, useId, useMemo, useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useParams } from "wouter";
import { api, call, type PluginDetail as Detail } from "../api/client";
import { keys, useIsAdmin, useMetrics, useProfiles } from "../api/queries";
import { AdminOnly, ErrorNote, Loading, LoadCurrent, onTabKeys, PageHead } from "../components/common";
import { CallsChart } from "../components/CallsChart";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { toast } from "../components/toasts";
import { fmtNum, fmtTime, fmtUs } from "../format";
import { pretty } from "../plugins/diff";
import { DiffView } from "../plugins/DiffView";
import { DryRun } from "../plugins/DryRun";
import { validateConfig } from "../plugins/validate";

const RjsfForm = lazy(() => import("../plugins/RjsfForm"));

/** If the generated form throws on an unusual schema, fall back to the raw JSON editor. */
class FormBoundary extends Component<{ fallback: (e: Error) => ReactNode; children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    return this.state.error ? this.props.fallback(this.state.error) : this.props.children;
  }
}

function MetricsCard({ name }: { name: string }) {
  const { t } = useTranslation();
  const m = useQuery({ ...metricsQuery(name), refetchInterval: 10_000, refetchIntervalInBackground: false });
  return (
    <section className="card" aria-labelledby="metrics-h">
      <h2 id="metrics-h">{t("plugin.metrics")}</h2>
      {m.isPending && <Loading />}
      {m.isError && <ErrorNote error={m.error} />}
      {m.data && (
        <>
          {m.data.quarantined && (
            <div className="alert error" role="alert">
              <strong>{t("plugins.quarantined")}</strong>
              <div>{t("plugin.quarantineHelp")}</div>
            </div>
          )}
          <dl className="kv">
            <dt>{t("plugins.calls")}</dt>
            <dd>{fmtNum(m.data.calls)}</dd>
            <dt>{t("plugins.failures")}</dt>
            <dd className={m.data.failures ? "danger-text" : undefined}>{fmtNum(m.data.failures)}</dd>
            <dt>p50</dt>
            <dd>{fmtUs(m.data.p50_us)}</dd>
            <dt>p99</dt>
            <dd>{fmtUs(m.data.p99_us)}</dd>
            <dt>{t("plugin.lostEvents")}</dt>
            <dd>{fmtNum(m.data.lost_events)}</dd>
            <dt>{t("plugin.lastError")}</dt>
            <dd className="mono small">{m.data.last_error ?? "—"}</dd>
            <dt>{t("common.updated")}</dt>
            <dd>{fmtTime(m.data.updated_at)}</dd>
          </dl>
        </>
      )}
    </section>
  );
}
const metricsQuery = (name: string) => ({
  queryKey: keys.metrics(name),
  queryFn: () => call(api.GET("/api/plugins/{name}/metrics", { params: { path: { name } } })),
});

function ConfigEditor({ plugin, onDraft }: { plugin: Detail; onDraft: (draft: { config: unknown } | null) => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const current = useMemo(() => pretty(plugin.config), [plugin.config]);
  const [draft, setDraft] = useState(current);
  // The revision the draft was made from: a save is made against it (If-Match), so a change someone made
  // meanwhile is refused (412) instead of undone. A newer revision replaces the draft only while it is unedited.
  const [base, setBase] = useState({ etag: plugin.etag, text: current });
  const [mode, setMode] = useState<"form" | "json">("json");
  const [formBroken, setFormBroken] = useState(false);
  const id = useId();
  const reload = () => {
    setBase({ etag: plugin.etag, text: current });
    setDraft(current);
    save.reset();
  };
  useEffect(() => {
    if (plugin.etag === base.etag) return;
    if (draft === base.text) reload();
  }, [plugin.etag]); // eslint-disable-line react-hooks/exhaustive-deps
  const parsed = useMemo((): { ok: true; value: unknown } | { ok: false; error: string } => {
    try {
      return { ok: true, value: JSON.parse(draft) };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }, [draft]);
  const problems = useMemo(() => {
    if (!parsed.ok) return [];
    try {
      return validateConfig(plugin.config_schema, parsed.value);
    } catch (e) {
      return [{ path: "/", message: t("plugin.schemaUnusable", { error: (e as Error).message }), keyword: "", keywordLocation: "" }];
    }
  }, [parsed, plugin.config_schema, t]);
  const save = useMutation({
    mutationFn: (config: unknown) =>
      call(
        api.PUT("/api/plugins/{name}/config", {
          params: { path: { name: plugin.name }, header: { "If-Match": base.etag } },
          body: { config },
        }),
      ),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      const text = pretty(p.config);
      setBase({ etag: p.etag, text });
      setDraft(text);
      qc.setQueryData(keys.plugin(plugin.name), p);
      void qc.invalidateQueries({ queryKey: keys.plugins });
      toast(t("plugin.configSaved"), "ok");
    },
  });
  const normalized = parsed.ok ? pretty(parsed.value) : draft;
  const dirty = normalized !== current;
  // The dry run may use the draft: an edited one that the schema accepts.
  const usable = dirty && parsed.ok && problems.length === 0;
  useEffect(() => onDraft(usable && parsed.ok ? { config: parsed.value } : null), [usable, normalized]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <section className="card" aria-labelledby="config-h">
      <div className="card-head">
        <h2 id="config-h">{t("plugin.configuration")}</h2>
        <div className="tabs" role="tablist" aria-label={t("plugin.editorMode")} style={{ marginBottom: 0 }} onKeyDown={onTabKeys}>
          <button type="button" role="tab" aria-selected={mode === "form"} tabIndex={mode === "form" ? 0 : -1} onClick={() => setMode("form")} disabled={!parsed.ok || formBroken}>
            {t("plugin.form")}
          </button>
          <button type="button" role="tab" aria-selected={mode === "json"} tabIndex={mode === "json" ? 0 : -1} onClick={() => setMode("json")}>
            {t("plugin.rawJson")}
          </button>
        </div>
      </div>
      {mode === "form" && parsed.ok && !formBroken ? (
        <FormBoundary
          fallback={(e) => {
            queueMicrotask(() => {
              setFormBroken(true);
              setMode("json");
            });
            return <div className="alert warn">{t("plugin.formFailed", { error: e.message })}</div>;
          }}
        >
          <Suspense fallback={<Loading />}>
            <RjsfForm schema={plugin.config_schema} value={parsed.value} onChange={(v) => setDraft(pretty(v))} />
          </Suspense>
        </FormBoundary>
      ) : (
        <div className="field">
          <label htmlFor={id}>{t("plugin.configJson")}</label>
          <textarea
            id={id}
            value={draft}
            rows={Math.min(24, Math.max(8, draft.split("\n").length + 1))}
            spellCheck={false}
            aria-invalid={!parsed.ok || problems.length > 0}
            aria-describedby={id + "-problems"}
            onChange={(e) => setDraft(e.target.value)}
          />
        </div>
      )}
      {formBroken && <div className="alert warn">{t("plugin.formUnavailable")}</div>}
      <div id={id + "-problems"} aria-live="polite">
        {!parsed.ok && (
          <div className="alert error">
            <strong>{t("plugin.invalidJson")}</strong> <span className="mono small">{parsed.error}</span>
          </div>
        )}
        {problems.length > 0 && (
          <div className="alert error">
            <strong>{t("plugin.schemaProblems")}</strong>
            <ul data-testid="config-problems">
              {problems.map((p, i) => (
                <li key={i}>
                  <code>{p.path}</code>: {p.message}
                </li>
              ))}
            </ul>
          </div>
        )}
      </div>
      {dirty && parsed.ok && (
        <>
          <h3>{t("plugin.changes")}</h3>
          <DiffView before={current} after={normalized} label={t("plugin.changes")} />
        </>
      )}
      <ErrorNote error={save.error} title={t("plugin.configRefused")} />
      <LoadCurrent error={save.error} reset={reload} queryKey={keys.plugin(plugin.name)} />
      <div className="row" style={{ marginTop: "0.75rem" }}>
        <button type="button" className="primary" disabled={!dirty || !parsed.ok || problems.length > 0 || save.isPending} onClick={() => parsed.ok && save.mutate(parsed.value)}>
          {t("plugin.saveConfig")}
        </button>
        {dirty && (
          <button type="button" onClick={() => { setDraft(current); save.reset(); }}>
            {t("common.reset")}
          </button>
        )}
      </div>
    </section>
  );
}

function Bindings({ plugin }: { plugin: Detail }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const profiles = useProfiles();
  const [scope, setScope] = useState("");
  const [order, setOrder] = useState("");
  const ids = { scope: useId(), order: useId() };
  const onDone = (p: Detail) => {
    qc.setQueryData(keys.plugin(plugin.name), p);
    void qc.invalidateQueries({ queryKey: keys.plugins });
  };
  const bind = useMutation({
    mutationFn: () =>
      call(api.POST("/api/plugins/{name}/bindings", { params: { path: { name: plugin.name } }, body: { profile: scope || null, order: order === "" ? null : Number(order) } })),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      onDone(p);
      setOrder("");
      toast(t("plugin.bound"), "ok");
    },
  });
  const unbind = useMutation({
    mutationFn: (profile: string | null) =>
      call(api.DELETE("/api/plugins/{name}/bindings", { params: { path: { name: plugin.name }, query: profile ? { profile } : {} } })),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      onDone(p);
      toast(t("plugin.unbound"), "ok");
    },
  });
  const sorted = [...plugin.bindings].sort((a, b) => (a.profile == null) === (b.profile == null) ? a.order - b.order : a.profile == null ? -1 : 1);
  return (
    <section className="card" aria-labelledby="bind-h">
      <h2 id="bind-h">{t("plugins.bindings")}</h2>
      <p className="muted small">{t("plugin.bindingsHelp")}</p>
      {sorted.length === 0 ? (
        <p className="muted">{t("plugins.unbound")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("plugin.scope")}</th>
              <th scope="col" className="num">{t("plugin.order")}</th>
              <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((b) => (
              <tr key={b.profile ?? "(global)"}>
                <td>{b.profile ? <Link href={`/profiles/${encodeURIComponent(b.profile)}`}>{b.profile}</Link> : <span className="badge accent">{t("pipeline.global")}</span>}</td>
                <td className="num">{b.order}</td>
                <td>
                  <button type="button" className="small" disabled={unbind.isPending} onClick={() => unbind.mutate(b.profile ?? null)}
                    aria-label={t("plugin.unbindNamed", { scope: b.profile ?? t("pipeline.global") })}>
                    {t("plugin.unbind")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline-form" style={{ marginTop: "0.75rem" }} onSubmit={(e) => { e.preventDefault(); bind.mutate(); }}>
        <div className="field">
          <label htmlFor={ids.scope}>{t("plugin.scope")}</label>
          <select id={ids.scope} value={scope} onChange={(e) => setScope(e.target.value)}>
            <option value="">{t("pipeline.global")}</option>
            {profiles.data?.map((p) => <option key={p.slug} value={p.slug}>{p.slug}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.order}>{t("plugin.orderOptional")}</label>
          <input id={ids.order} type="number" value={order} onChange={(e) => setOrder(e.target.value)} style={{ width: "8rem" }} />
        </div>
        <button type="submit" disabled={bind.isPending}>{t("plugin.bind")}</button>
      </form>
      <ErrorNote error={bind.error ?? unbind.error} />
    </section>
  );
}

function Revisions({ plugin }: { plugin: Detail }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [shown, setShown] = useState<number | null>(null);
  const rollback = useMutation({
    mutationFn: () => call(api.POST("/api/plugins/{name}/rollback", { params: { path: { name: plugin.name } } })),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      qc.setQueryData(keys.plugin(plugin.name), p);
      void qc.invalidateQueries({ queryKey: keys.plugins });
      toast(t("plugin.rolledBack"), "ok");
    },
  });
  const currentIdx = plugin.revisions.findIndex((r) => r.current);
  const current = plugin.revisions[currentIdx];
  const canRollback = currentIdx >= 0 && currentIdx < plugin.revisions.length - 1;
  return (
    <section className="card" aria-labelledby="rev-h">
      <div className="card-head">
        <h2 id="rev-h">{t("plugin.revisions")}</h2>
        <button type="button" disabled={!canRollback || rollback.isPending} onClick={() => rollback.mutate()}>
          {t("plugin.rollback")}
        </button>
      </div>
      <p className="muted small">{t("plugin.rollbackHelp")}</p>
      <ErrorNote error={rollback.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">{t("plugin.note")}</th>
            <th scope="col">{t("common.created")}</th>
            <th scope="col">{t("plugins.sha256")}</th>
            <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
          </tr>
        </thead>
        <tbody>
          {plugin.revisions.map((r) => (
            <tr key={r.id}>
              <td>{r.id} {r.current && <span className="badge ok">{t("plugin.current")}</span>}</td>
              <td>{r.note}</td>
              <td className="small">{fmtTime(r.created_at)}</td>
              <td className="mono small" title={r.sha256}>{r.sha256.slice(0, 12)}…</td>
              <td>
                {!r.current && (
                  <button type="button" className="small" aria-expanded={shown === r.id} onClick={() => setShown(shown === r.id ? null : r.id)}>
                    {t("plugin.compare")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown != null && current && (
        <div style={{ marginTop: "0.75rem" }}>
          <h3>{t("plugin.compareTitle", { a: shown, b: current.id })}</h3>
          <DiffView before={pretty(plugin.revisions.find((r) => r.id === shown)?.config)} after={pretty(current.config)} label={t("plugin.compareTitle", { a: shown, b: current.id })} />
        </div>
      )}
    </section>
  );
}

export default function PluginDetail() {
  const { t } = useTranslation();
  const { name } = useParams<{ name: string }>();
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const isAdmin = useIsAdmin();
  const q = useQuery({
    queryKey: keys.plugin(name),
    queryFn: () => call(api.GET("/api/plugins/{name}", { params: { path: { name } } })),
    meta: { suppressErrorToast: true },
    enabled: isAdmin,
  });
  useMetrics(name, isAdmin);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [draft, setDraft] = useState<{ config: unknown } | null>(null);
  const enable = useMutation({
    mutationFn: (enabled: boolean) => call(api.PUT("/api/plugins/{name}/enabled", { params: { path: { name } }, body: { enabled } })),
    onSuccess: (p) => {
      qc.setQueryData(keys.plugin(name), p);
      void qc.invalidateQueries({ queryKey: keys.plugins });
      toast(p.enabled ? t("plugin.nowEnabled") : t("plugin.nowDisabled"), "ok");
    },
  });
  const del = useMutation({
    mutationFn: () => call(api.DELETE("/api/plugins/{name}", { params: { path: { name } } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      qc.removeQueries({ queryKey: keys.plugin(name) });
      void qc.invalidateQueries({ queryKey: keys.plugins });
      toast(t("plugin.deleted", { name }), "ok");
      navigate("/plugins");
    },
  });
  if (!isAdmin) return <AdminOnly />;
  if (q.isPending) return <Loading />;
  if (q.isError)
    return (
      <>
        <PageHead title={name} />
        <ErrorNote error={q.error} />
        <Link href="/plugins">{t("plugin.back")}</Link>
      </>
    );
  const p = q.data;
  return (
    <>
      <PageHead title={p.name} subtitle={p.kind}>
        <Link className="button" href="/plugins">{t("plugin.back")}</Link>
        <button type="button" className={p.enabled ? undefined : "primary"} disabled={enable.isPending} onClick={() => enable.mutate(!p.enabled)}>
          {p.enabled ? t("plugin.disable") : t("plugin.enable")}
        </button>
      </PageHead>
      <div className="grid grid-2">
        <section className="card" aria-labelledby="ov-h">
          <h2 id="ov-h">{t("plugin.overview")}</h2>
          <dl className="kv">
            <dt>{t("plugin.kind")}</dt>
            <dd className="mono">{p.kind}</dd>
            <dt>{t("plugin.state")}</dt>
            <dd>
              {p.enabled ? <span className="badge ok">{t("plugins.enabled")}</span> : <span className="badge warn">{t("plugins.disabled")}</span>}{" "}
              {p.builtin && <span className="badge">{t("plugins.builtin")}</span>}
            </dd>
            <dt>{t("plugin.world")}</dt>
            <dd className="mono">{p.wit_version}</dd>
            <dt>{t("plugins.sha256")}</dt>
            <dd className="mono small">{p.sha256}</dd>
            <dt>{t("plugin.imports")}</dt>
            <dd className="mono small">{p.imports.length ? p.imports.map((i) => <div key={i}>{i}</div>) : "—"}</dd>
            <dt>{t("plugin.exports")}</dt>
            <dd className="mono small">{p.exports.length ? p.exports.map((i) => <div key={i}>{i}</div>) : "—"}</dd>
          </dl>
        </section>
        <MetricsCard name={p.name} />
      </div>
      <CallsChart title={t("charts.pluginLastHour")} filter={{ plugin: p.name }} />
      <ConfigEditor plugin={p} onDraft={setDraft} />
      <DryRun plugin={p} draft={draft} />
      <div className="grid grid-2">
        <Bindings plugin={p} />
        <Revisions plugin={p} />
      </div>
      {!p.builtin && (
        <section className="card" aria-labelledby="pdanger-h">
          <h2 id="pdanger-h" className="danger-text">{t("common.dangerZone")}</h2>
          <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>{t("plugin.delete")}</button>
        </section>
      )}
      <ConfirmDialog
        open={confirmDelete}
        title={t("plugin.deleteTitle", { name: p.name })}
        body={t("plugin.deleteBody")}
        typeToConfirm={p.name}
        confirmLabel={t("plugin.delete")}
        busy={del.isPending}
        error={del.error}
        onConfirm={() => del.mutate()}
        onClose={() => { setConfirmDelete(false); del.reset(); }}
      />
    </>
  );
}
