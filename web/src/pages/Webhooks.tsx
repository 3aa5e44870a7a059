import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { allPages, api, call, type Webhook } from "../api/client";
import { keys, useIsAdmin } from "../api/queries";
import { AdminOnly, Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { toast } from "../components/toasts";

export function Webhooks() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: keys.webhooks,
    queryFn: () => allPages((after) => call(api.GET("/api/webhooks", { params: { query: { after, limit: 500 } } }))),
    enabled: isAdmin,
  });
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [toDelete, setToDelete] = useState<Webhook | null>(null);
  const ids = { name: useId(), url: useId() };
  const save = useMutation({
    mutationFn: () => call(api.PUT("/api/webhooks/{name}", { params: { path: { name } }, body: { url } })),
    meta: { suppressErrorToast: true },
    onSuccess: (w) => {
      void qc.invalidateQueries({ queryKey: keys.webhooks });
      setName("");
      setUrl("");
      toast(t("webhooks.saved", { name: w.name }), "ok");
    },
  });
  const del = useMutation({
    mutationFn: (w: Webhook) => call(api.DELETE("/api/webhooks/{name}", { params: { path: { name: w.name } } })),
    meta: { suppressErrorToast: true },
    onSuccess: () => {
      setToDelete(null);
      void qc.invalidateQueries({ queryKey: keys.webhooks });
      toast(t("webhooks.deleted"), "ok");
    },
  });
  if (!isAdmin) return <AdminOnly />;
  return (
    <>
      <PageHead title={t("webhooks.title")} subtitle={t("webhooks.subtitle")} />
      <div className="card">
        {list.isPending && <Loading />}
        {list.isError && <ErrorNote error={list.error} />}
        {list.data?.length === 0 && <Empty>{t("webhooks.empty")}</Empty>}
        {!!list.data?.length && (
          <table>
            <thead>
              <tr>
                <th scope="col">{t("webhooks.name")}</th>
                <th scope="col">{t("webhooks.url")}</th>
                <th scope="col">{t("webhooks.route")}</th>
                <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((w) => (
                <tr key={w.name}>
                  <td>{w.name}</td>
                  <td className="mono small">{w.url}</td>
                  <td className="mono small">webhook:{w.name}</td>
                  <td className="row">
                    <button type="button" className="small" onClick={() => { setName(w.name); setUrl(w.url); }} aria-label={t("webhooks.editNamed", { name: w.name })}>
                      {t("common.edit")}
                    </button>
                    <button type="button" className="small" onClick={() => setToDelete(w)} aria-label={t("webhooks.deleteNamed", { name: w.name })}>
                      {t("common.delete")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <form className="card" aria-labelledby="wh-set-h" onSubmit={(e) => { e.preventDefault(); save.mutate(); }}>
        <h2 id="wh-set-h">{t("webhooks.set")}</h2>
        <div className="form-row">
          <div className="field">
            <label htmlFor={ids.name}>{t("webhooks.name")}</label>
            <input id={ids.name} type="text" value={name} onChange={(e) => setName(e.target.value)} required spellCheck={false} />
          </div>
          <div className="field">
            <label htmlFor={ids.url}>{t("webhooks.url")}</label>
            <input id={ids.url} type="url" value={url} onChange={(e) => setUrl(e.target.value)} required placeholder="https://siem.example.com/ingest" aria-describedby={ids.url + "-h"} />
            <span className="hint" id={ids.url + "-h"}>{t("webhooks.urlHint")}</span>
          </div>
        </div>
        <ErrorNote error={save.error} />
        <button type="submit" className="primary" disabled={!name || !url || save.isPending}>{t("webhooks.save")}</button>
      </form>
      <ConfirmDialog
        open={!!toDelete}
        title={t("webhooks.deleteTitle", { name: toDelete?.name ?? "" })}
        body={t("webhooks.deleteBody")}
        confirmLabel={t("common.delete")}
        busy={del.isPending}
        error={del.error}
        onConfirm={() => toDelete && del.mutate(toDelete)}
        onClose={() => { setToDelete(null); del.reset(); }}
      />
    </>
  );
}
