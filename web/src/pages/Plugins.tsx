import { useMutation, useQueries, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation } from "wouter";
import { api, call, type Metrics, type Plugin } from "../api/client";
import { keys, useIsAdmin, usePlugins } from "../api/queries";
import { AdminOnly, Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { KINDS } from "../components/Pipeline";
import { toast } from "../components/toasts";
import { fmtNum } from "../format";

export async function sha256Hex(file: Blob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function UploadForm() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [kind, setKind] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [sha, setSha] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const ids = { name: useId(), kind: useId(), file: useId() };
  const upload = useMutation({
    mutationFn: () =>
      call(
        api.POST("/api/plugins", {
          params: { query: { name, kind: kind || undefined, sha256: sha ?? undefined } },
          body: file!,
          bodySerializer: (b: Blob) => b,
          headers: { "Content-Type": "application/octet-stream" },
        }),
      ),
    meta: { suppressErrorToast: true },
    onSuccess: (p) => {
      void qc.invalidateQueries({ queryKey: keys.plugins });
      toast(t("plugins.uploaded", { name: p.name }), "ok");
      navigate(`/plugins/${encodeURIComponent(p.name)}`);
    },
  });
  const onFile = async (f: File | null) => {
    setFile(f);
    setSha(null);
    upload.reset();
    if (f) {
      if (!name) setName(f.name.replace(/\.wasm$/i, "").toLowerCase().replace(/[^a-z0-9_-]/g, "-"));
      setSha(await sha256Hex(f));
    }
  };
  return (
    <form
      className="card"
      aria-labelledby="upload-h"
      onSubmit={(e) => {
        e.preventDefault();
        if (file && sha && name) upload.mutate();
      }}
    >
      <h2 id="upload-h">{t("plugins.upload")}</h2>
      <p className="muted small">{t("plugins.uploadHelp")}</p>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.file}>{t("plugins.file")}</label>
          <input id={ids.file} ref={fileRef} type="file" accept=".wasm,application/wasm" onChange={(e) => void onFile(e.target.files?.[0] ?? null)} />
        </div>
        <div className="field">
          <label htmlFor={ids.name}>{t("plugins.name")}</label>
          <input id={ids.name} type="text" value={name} onChange={(e) => setName(e.target.value)} required spellCheck={false} />
        </div>
        <div className="field">
          <label htmlFor={ids.kind}>{t("plugins.expectKind")}</label>
          <select id={ids.kind} value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="">{t("plugins.anyKind")}</option>
            {KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
          </select>
        </div>
      </div>
      {file && (
        <p className="small">
          {t("plugins.sha256")}: <code data-testid="upload-sha256">{sha ?? t("common.loading")}</code>
        </p>
      )}
      <ErrorNote error={upload.error} title={t("plugins.refused")} />
      <button type="submit" className="primary" disabled={!file || !sha || !name || upload.isPending}>
        {upload.isPending ? t("common.working") : t("plugins.uploadButton")}
      </button>
    </form>
  );
}

function Health({ p, m }: { p: Plugin; m?: Metrics }) {
  const { t } = useTranslation();
  return (
    <span className="row">
      {p.enabled ? <span className="badge ok">{t("plugins.enabled")}</span> : <span className="badge warn">{t("plugins.disabled")}</span>}
      {m?.quarantined && <span className="badge danger">{t("plugins.quarantined")}</span>}
      {p.builtin && <span className="badge">{t("plugins.builtin")}</span>}
    </span>
  );
}

export function Plugins() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const plugins = usePlugins(isAdmin);
  const metrics = useQueries({
    queries: (plugins.data ?? []).map((p) => ({
      queryKey: keys.metrics(p.name),
      queryFn: () => call(api.GET("/api/plugins/{name}/metrics", { params: { path: { name: p.name } } })),
      meta: { suppressErrorToast: true },
    })),
  });
  if (!isAdmin) return <AdminOnly />;
  const byName = new Map((plugins.data ?? []).map((p, i) => [p.name, metrics[i]?.data]));
  const kinds = [...new Set([...KINDS, ...(plugins.data ?? []).map((p) => p.kind)])];
  return (
    <>
      <PageHead title={t("plugins.title")} subtitle={t("plugins.subtitle")} />
      {plugins.isPending && <Loading />}
      {plugins.isError && <ErrorNote error={plugins.error} />}
      {plugins.data?.length === 0 && <Empty>{t("plugins.empty")}</Empty>}
      {plugins.data &&
        kinds.map((kind) => {
          const list = plugins.data.filter((p) => p.kind === kind);
          if (!list.length) return null;
          return (
            <section key={kind} className="card" aria-labelledby={`kind-${kind}`}>
              <h2 id={`kind-${kind}`} className="mono">{kind}</h2>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t("plugins.name")}</th>
                      <th scope="col">{t("plugins.health")}</th>
                      <th scope="col" className="num">{t("plugins.calls")}</th>
                      <th scope="col" className="num">{t("plugins.failures")}</th>
                      <th scope="col">{t("plugins.bindings")}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((p) => {
                      const m = byName.get(p.name);
                      return (
                        <tr key={p.name}>
                          <td><Link href={`/plugins/${encodeURIComponent(p.name)}`}>{p.name}</Link></td>
                          <td><Health p={p} m={m} /></td>
                          <td className="num">{m ? fmtNum(m.calls) : "…"}</td>
                          <td className="num">{m ? (m.failures ? <span className="danger-text">{fmtNum(m.failures)}</span> : 0) : "…"}</td>
                          <td className="small">
                            {p.bindings.length === 0
                              ? <span className="muted">{t("plugins.unbound")}</span>
                              : p.bindings.map((b) => (b.profile ? b.profile : t("pipeline.global")) + ` #${b.order}`).join(", ")}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            </section>
          );
        })}
      <UploadForm />
    </>
  );
}
