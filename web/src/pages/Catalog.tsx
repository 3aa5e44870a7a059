import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useParams } from "wouter";
import { api, ApiError, call } from "../api/client";
import { keys, useIsAdmin } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { toast } from "../components/toasts";

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const catalogQuery = {
  queryKey: ["catalog"] as const,
  queryFn: () => call(api.GET("/api/catalog")),
  meta: { suppressErrorToast: true },
  staleTime: 60_000,
};

/** A 404 `no_catalog`: the gateway has no registry configured (or has not accepted an index yet). */
function NoCatalog({ error }: { error: unknown }) {
  const { t } = useTranslation();
  if (error instanceof ApiError && error.status === 404)
    return (
      <Empty>
        <p>{t("catalog.none")}</p>
        <p className="muted small">{error.message}</p>
      </Empty>
    );
  return <ErrorNote error={error} />;
}

export function Catalog() {
  const { t } = useTranslation();
  const q = useQuery(catalogQuery);
  const [category, setCategory] = useState("");
  const [search, setSearch] = useState("");
  const searchId = useId();
  const categoryId = useId();
  const categories = useMemo(() => [...new Set((q.data?.entries ?? []).map((e) => e.category).filter(Boolean))].sort(), [q.data]);
  const needle = search.trim().toLowerCase();
  const shown = (q.data?.entries ?? []).filter(
    (e) =>
      (!category || e.category === category) &&
      (!needle || e.name.includes(needle) || e.display_name.toLowerCase().includes(needle) || e.description.toLowerCase().includes(needle)),
  );
  return (
    <>
      <PageHead title={t("catalog.title")} subtitle={t("catalog.subtitle")} />
      <div className="card">
        {q.isPending && <Loading />}
        {q.isError && <NoCatalog error={q.error} />}
        {q.data && (
          <>
            <div className="row" style={{ marginBottom: "0.75rem", flexWrap: "wrap", alignItems: "flex-end" }}>
              <span className="field">
                <label htmlFor={searchId}>{t("catalog.search")}</label>
                <input id={searchId} type="search" value={search} onChange={(e) => setSearch(e.target.value)} autoComplete="off" />
              </span>
              <span className="field">
                <label htmlFor={categoryId}>{t("catalog.category")}</label>
                <select id={categoryId} value={category} onChange={(e) => setCategory(e.target.value)}>
                  <option value="">{t("catalog.allCategories")}</option>
                  {categories.map((c) => (
                    <option key={c} value={c}>
                      {c}
                    </option>
                  ))}
                </select>
              </span>
            </div>
            <p className="muted small">{t("catalog.signed", { source: q.data.source, generated: q.data.generated, n: q.data.entries.length })}</p>
            {shown.length === 0 ? (
              <Empty>{t("catalog.noMatch")}</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t("catalog.entry")}</th>
                      <th scope="col">{t("catalog.category")}</th>
                      <th scope="col">{t("catalog.kind")}</th>
                      <th scope="col">{t("catalog.credential")}</th>
                      <th scope="col" className="num">{t("catalog.tools")}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((e) => (
                      <tr key={e.name}>
                        <td>
                          <Link href={`/catalog/${encodeURIComponent(e.name)}`}>{e.display_name || e.name}</Link>
                          <div className="muted small mono">
                            {e.name}@{e.version}
                          </div>
                        </td>
                        <td>{e.category || "—"}</td>
                        <td>
                          <span className="badge">{e.kind}</span> {e.not_installable && <span className="badge warn">{t("catalog.notInstallable")}</span>}
                        </td>
                        <td>{e.credentials.length ? e.credentials.join(", ") : <span className="muted">{t("catalog.noCredential")}</span>}</td>
                        <td className="num">{t("catalog.toolCount", { on: e.default_tool_count, all: e.tool_count })}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </>
        )}
      </div>
    </>
  );
}

function InstallForm({ name, versions, latest, blocked }: { name: string; versions: string[]; latest: string; blocked: boolean }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [server, setServer] = useState(name.replace(/[^a-z0-9_-]/g, "-"));
  const [version, setVersion] = useState(latest);
  const [baseUrl, setBaseUrl] = useState("");
  const ids = { server: useId(), version: useId(), base: useId() };
  const install = useMutation({
    mutationFn: () =>
      call(
        api.POST("/api/servers", {
          body: {
            name: server,
            catalog: `${name}@${version}`,
            ...(baseUrl.trim() ? { base_url: baseUrl.trim() } : {}),
            per_session: false,
            args: [],
            env: {},
            mounts: [],
            egress: [],
          },
        }),
      ),
    meta: { suppressErrorToast: true },
    onSuccess: (s) => {
      void qc.invalidateQueries({ queryKey: keys.servers });
      toast(s.consent_pending ? t("catalog.upgradedWaiting", { name: s.name }) : t("catalog.installed", { name: s.name, entry: s.catalog }), "ok");
      navigate(`/servers/${encodeURIComponent(s.name)}`);
    },
  });
  const valid = NAME.test(server) && !blocked;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) install.mutate();
      }}
    >
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.server}>{t("catalog.serverName")}</label>
          <input id={ids.server} value={server} onChange={(e) => setServer(e.target.value)} aria-invalid={!NAME.test(server) || undefined} autoComplete="off" spellCheck={false} />
        </div>
        <div className="field">
          <label htmlFor={ids.version}>{t("catalog.version")}</label>
          <select id={ids.version} value={version} onChange={(e) => setVersion(e.target.value)}>
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div className="field">
        <label htmlFor={ids.base}>{t("catalog.baseUrl")}</label>
        <input id={ids.base} value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="https://acme.example.com" className="mono" autoComplete="off" spellCheck={false} aria-describedby={ids.base + "-h"} />
        <span className="hint" id={ids.base + "-h"}>
          {t("catalog.baseUrlHint")}
        </span>
      </div>
      <ErrorNote error={install.error} title={t("catalog.refused")} />
      <button type="submit" className="primary" disabled={!valid || install.isPending}>
        {t("catalog.install")}
      </button>
    </form>
  );
}

export function CatalogEntry() {
  const { t } = useTranslation();
  const { name } = useParams<{ name: string }>();
  const isAdmin = useIsAdmin();
  const q = useQuery({
    queryKey: ["catalog", name],
    queryFn: () => call(api.GET("/api/catalog/{name}", { params: { path: { name }, query: {} } })),
    meta: { suppressErrorToast: true },
  });
  if (q.isPending) return <Loading />;
  if (q.isError)
    return (
      <>
        <PageHead title={name} />
        <NoCatalog error={q.error} />
        <Link href="/catalog">{t("catalog.back")}</Link>
      </>
    );
  const e = q.data;
  return (
    <>
      <PageHead title={e.display_name || e.name} subtitle={e.description || t("catalog.entrySubtitle", { name: e.name })}>
        <Link className="button" href="/catalog">
          {t("catalog.back")}
        </Link>
      </PageHead>
      <div className="grid grid-2">
        <section className="card" aria-labelledby="entry-h">
          <h2 id="entry-h">{t("catalog.details")}</h2>
          <dl className="kv">
            <dt>{t("catalog.entry")}</dt>
            <dd className="mono">
              {e.name}@{e.version}
            </dd>
            <dt>{t("catalog.versions")}</dt>
            <dd>{e.versions.join(", ")}</dd>
            <dt>{t("catalog.category")}</dt>
            <dd>{e.category || "—"}</dd>
            <dt>{t("catalog.kind")}</dt>
            <dd>
              <span className="badge">{e.kind}</span> <span className="badge">{e.tier}</span>
            </dd>
            <dt>{t("catalog.egress")}</dt>
            <dd className="mono small">{e.egress.join(", ") || "—"}</dd>
            <dt>{t("catalog.source")}</dt>
            <dd className="mono small">
              {e.source_repo} {e.source_tag}
            </dd>
            <dt>{t("catalog.runtimeHash")}</dt>
            <dd className="mono small" style={{ wordBreak: "break-all" }}>
              {e.runtime_hash}
            </dd>
          </dl>
          {e.credential_details.length > 0 && (
            <>
              <h3 style={{ marginTop: "1rem" }}>{t("catalog.credential")}</h3>
              <ul>
                {e.credential_details.map((c) => (
                  <li key={c.id}>
                    <span className="mono">{c.id}</span> <span className="badge">{c.type}</span>
                    {c.vendor && <span className="muted small"> {t("catalog.vendor", { vendor: c.vendor })}</span>}
                    {c.header && (
                      <div className="muted small mono">
                        {c.header}: {c.format}
                      </div>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
        <section className="card" aria-labelledby="install-h">
          <h2 id="install-h">{t("catalog.install")}</h2>
          {e.not_installable ? (
            <p className="muted">{t("catalog.notInstallableBecause", { why: e.not_installable })}</p>
          ) : isAdmin ? (
            <>
              <p className="muted small">{t("catalog.installHelp")}</p>
              <InstallForm name={e.name} versions={e.versions} latest={e.latest} blocked={e.kind === "node" || e.kind === "python"} />
              {e.kind === "binary" && <p className="muted small">{t("catalog.binaryPulled")}</p>}
              {(e.kind === "node" || e.kind === "python") && <p className="muted small">{t("catalog.onlyToolpacks")}</p>}
            </>
          ) : (
            <p className="muted">{t("catalog.adminsInstall")}</p>
          )}
        </section>
      </div>
      <section className="card" aria-labelledby="tools-h" style={{ marginTop: "1rem" }}>
        <h2 id="tools-h">{t("catalog.tools")}</h2>
        <p className="muted small">{t("catalog.toolsHelp")}</p>
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("catalog.tool")}</th>
                <th scope="col">{t("catalog.byDefault")}</th>
                <th scope="col">{t("catalog.description")}</th>
              </tr>
            </thead>
            <tbody>
              {e.tools.map((tool) => (
                <tr key={tool.name}>
                  <td className="mono">{tool.name}</td>
                  <td>{tool.default ? <span className="badge ok">{t("catalog.on")}</span> : <span className="badge">{t("catalog.off")}</span>}</td>
                  <td className="small">{tool.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
