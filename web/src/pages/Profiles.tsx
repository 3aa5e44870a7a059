import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { api, call } from "../api/client";
import { keys, useProfiles } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { Dialog } from "../components/Dialog";
import { TokenReveal, type Reveal } from "../components/TokenReveal";
import { fmtTime } from "../format";

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

function CreateProfileDialog({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (r: Reveal) => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [slug, setSlug] = useState("");
  const [name, setName] = useState("");
  const slugId = useId();
  const nameId = useId();
  const create = useMutation({
    mutationFn: () => call(api.POST("/api/profiles", { body: { slug, name } })),
    meta: { suppressErrorToast: true },
    onSuccess: (created) => {
      void qc.invalidateQueries({ queryKey: keys.profiles });
      setSlug("");
      setName("");
      onCreated({ name: created.profile.slug, endpoint: created.profile.endpoint, token: created.token });
    },
  });
  const slugOk = SLUG.test(slug);
  const close = () => {
    create.reset();
    onClose();
  };
  return (
    <Dialog
      open={open}
      onClose={close}
      title={t("profiles.create")}
      actions={
        <>
          <button type="button" onClick={close}>
            {t("common.cancel")}
          </button>
          <button type="submit" form="create-profile" className="primary" disabled={!slugOk || create.isPending}>
            {create.isPending ? t("common.working") : t("profiles.createButton")}
          </button>
        </>
      }
    >
      <form
        id="create-profile"
        onSubmit={(e) => {
          e.preventDefault();
          if (slugOk) create.mutate();
        }}
      >
        <div className="field">
          <label htmlFor={slugId}>{t("profiles.slug")}</label>
          <input
            id={slugId}
            type="text"
            value={slug}
            required
            autoComplete="off"
            spellCheck={false}
            aria-invalid={slug !== "" && !slugOk}
            aria-describedby={slugId + "-hint"}
            onChange={(e) => setSlug(e.target.value)}
          />
          <span className="hint" id={slugId + "-hint"}>
            {t("profiles.slugHint")}
          </span>
        </div>
        <div className="field">
          <label htmlFor={nameId}>{t("profiles.displayName")}</label>
          <input id={nameId} type="text" value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} />
        </div>
        <ErrorNote error={create.error} />
      </form>
    </Dialog>
  );
}

export function Profiles() {
  const { t } = useTranslation();
  const profiles = useProfiles();
  const [creating, setCreating] = useState(false);
  const [reveal, setReveal] = useState<Reveal | null>(null);
  return (
    <>
      <PageHead title={t("profiles.title")} subtitle={t("profiles.subtitle")}>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          {t("profiles.create")}
        </button>
      </PageHead>
      <div className="card">
        {profiles.isPending && <Loading />}
        {profiles.isError && <ErrorNote error={profiles.error} />}
        {profiles.data?.length === 0 && <Empty>{t("profiles.empty")}</Empty>}
        {!!profiles.data?.length && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("profiles.slug")}</th>
                  <th scope="col">{t("profiles.displayName")}</th>
                  <th scope="col">{t("profiles.servers")}</th>
                  <th scope="col">{t("profiles.endpoint")}</th>
                  <th scope="col">{t("common.created")}</th>
                </tr>
              </thead>
              <tbody>
                {profiles.data.map((p) => (
                  <tr key={p.slug}>
                    <td>
                      <Link href={`/profiles/${encodeURIComponent(p.slug)}`}>{p.slug}</Link>
                    </td>
                    <td>{p.name || "—"}</td>
                    <td>{p.servers.length ? p.servers.join(", ") : <span className="muted">{t("profiles.noServers")}</span>}</td>
                    <td className="mono small">{p.endpoint}</td>
                    <td className="small">{fmtTime(p.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      <CreateProfileDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(r) => {
          setCreating(false);
          setReveal(r);
        }}
      />
      <TokenReveal reveal={reveal} onDone={() => setReveal(null)} />
    </>
  );
}
