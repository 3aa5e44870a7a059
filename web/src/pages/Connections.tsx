import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { api, call, type OAuthApp } from "../api/client";
import {
  accountRows,
  callbackUrl,
  useRedirectUri,
  formatParams,
  parseParams,
  parseScopes,
  useConnections,
  useOAuthApps,
  type Owner,
} from "../api/connections";
import { keys, useMe } from "../api/queries";
import { Empty, ErrorNote, Loading, PageHead } from "../components/common";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ConnectionState, ConnectLink, TokenTimes } from "../components/ConnectedAccount";
import { CopyBlock } from "../components/CopyBlock";
import { toast } from "../components/toasts";
import { fmtTime } from "../format";

const VENDOR = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** One owner's accounts: a row per vendor with an app, and per connection whose app was removed. */
function Accounts({ owner }: { owner: Owner }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const apps = useOAuthApps();
  const connections = useConnections(owner);
  const [toDisconnect, setToDisconnect] = useState<string | null>(null);
  const disconnect = useMutation({
    mutationFn: (vendor: string) =>
      call(
        api.DELETE("/api/connections/{vendor}", {
          params: { path: { vendor }, query: owner === "operator" ? { as: "operator" } : {} },
        }),
      ),
    meta: { suppressErrorToast: true },
    onSuccess: (_, vendor) => {
      setToDisconnect(null);
      void qc.invalidateQueries({ queryKey: keys.connections(owner) });
      toast(t("connections.disconnected", { vendor }), "ok");
    },
  });
  const heading = owner === "me" ? "mine-h" : "operator-h";
  const rows = apps.data && connections.data ? accountRows(apps.data, connections.data) : undefined;
  return (
    <section className="card" aria-labelledby={heading}>
      <h2 id={heading}>{owner === "me" ? t("connections.mine") : t("connections.operator")}</h2>
      <p className="muted small">{owner === "me" ? t("connections.mineHelp") : t("connections.operatorHelp")}</p>
      {(apps.isPending || connections.isPending) && <Loading />}
      <ErrorNote error={apps.error ?? connections.error} />
      {rows?.length === 0 && <Empty>{t("connections.noApps")}</Empty>}
      {!!rows?.length && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("connections.vendor")}</th>
                <th scope="col">{t("connections.neededBy")}</th>
                <th scope="col">{t("connections.state")}</th>
                <th scope="col">{t("connections.scopes")}</th>
                <th scope="col">{t("connections.token")}</th>
                <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ vendor, app, connection }) => (
                <tr key={vendor}>
                  <td><strong>{vendor}</strong></td>
                  <td>
                    {app?.servers.length ? (
                      app.servers.map((s, i) => (
                        <span key={s}>
                          {i > 0 && ", "}
                          <Link href={`/servers/${encodeURIComponent(s)}`}>{s}</Link>
                        </span>
                      ))
                    ) : (
                      <span className="muted small">{app ? t("connections.noServer") : "—"}</span>
                    )}
                  </td>
                  <td>
                    <ConnectionState connection={connection} />
                    {!app && (
                      <div className="small">
                        <span className="badge warn">{t("connections.appRemoved")}</span>{" "}
                        <span className="muted">{t("connections.appRemovedHelp")}</span>
                      </div>
                    )}
                  </td>
                  <td className={connection?.scopes.length ? "mono small" : "muted"}>{connection?.scopes.length ? connection.scopes.join(" ") : "—"}</td>
                  <td>{connection ? <TokenTimes connection={connection} /> : <span className="muted">—</span>}</td>
                  <td>
                    <div className="row">
                      {app && (
                        <ConnectLink
                          vendor={vendor}
                          to={{ returnTo: "/connections" }}
                          owner={owner}
                          reconnect={!!connection}
                          primary={!connection || connection.state !== "ok"}
                        />
                      )}
                      {connection && (
                        <button
                          type="button"
                          className="small"
                          onClick={() => setToDisconnect(vendor)}
                          aria-label={t("connections.disconnectNamed", { vendor })}
                        >
                          {t("connections.disconnect")}
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={!!toDisconnect}
        title={t("connections.disconnectTitle", { vendor: toDisconnect ?? "" })}
        body={owner === "me" ? t("connections.disconnectBody") : t("connections.disconnectOperatorBody")}
        confirmLabel={t("connections.disconnect")}
        busy={disconnect.isPending}
        error={disconnect.error}
        onConfirm={() => toDisconnect && disconnect.mutate(toDisconnect)}
        onClose={() => {
          setToDisconnect(null);
          disconnect.reset();
        }}
      />
    </section>
  );
}

type AppForm = {
  vendor: string;
  authorize_url: string;
  token_url: string;
  revoke_url: string;
  client_id: string;
  scopes: string;
  pkce: boolean;
  params: string;
  auth_style: "basic" | "post";
  scope_separator: string;
  require_refresh_token: boolean;
  default_expires_in: string;
};

const EMPTY_FORM: AppForm = {
  vendor: "",
  authorize_url: "",
  token_url: "",
  revoke_url: "",
  client_id: "",
  scopes: "",
  pkce: false,
  params: "",
  auth_style: "basic",
  scope_separator: " ",
  require_refresh_token: true,
  default_expires_in: "3600",
};

const formOf = (app: OAuthApp): AppForm => ({
  vendor: app.vendor,
  authorize_url: app.authorize_url,
  token_url: app.token_url,
  revoke_url: app.revoke_url ?? "",
  client_id: app.client_id,
  scopes: app.scopes.join(" "),
  pkce: app.pkce,
  params: formatParams(app.params),
  auth_style: app.auth_style,
  scope_separator: app.scope_separator,
  require_refresh_token: app.require_refresh_token,
  default_expires_in: String(app.default_expires_in),
});

/**
 * Adds or changes a vendor's app. The client secret is write-only: an uncontrolled password field, never
 * filled in, read once when the request is sent and cleared (it never enters React state, a mutation's
 * variables, a URL or a toast); left empty, the gateway keeps the stored one.
 */
function AppEditor({ apps, form, setForm }: { apps: OAuthApp[]; form: AppForm; setForm: (f: AppForm) => void }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const secretRef = useRef<HTMLInputElement>(null);
  const ids = {
    vendor: useId(),
    authorize: useId(),
    token: useId(),
    revoke: useId(),
    client: useId(),
    secret: useId(),
    scopes: useId(),
    params: useId(),
    style: useId(),
    separator: useId(),
    expires: useId(),
  };
  const set = (k: keyof AppForm) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
    setForm({ ...form, [k]: e.target.type === "checkbox" ? (e.target as HTMLInputElement).checked : e.target.value });
  const existing = apps.find((a) => a.vendor === form.vendor);
  const params = parseParams(form.params);
  const expiresIn = Number(form.default_expires_in);
  const save = useMutation({
    mutationFn: async () => {
      const secret = secretRef.current?.value ?? "";
      if (secretRef.current) secretRef.current.value = "";
      return call(
        api.PUT("/api/oauth/apps/{vendor}", {
          params: { path: { vendor: form.vendor } },
          body: {
            authorize_url: form.authorize_url.trim(),
            token_url: form.token_url.trim(),
            revoke_url: form.revoke_url.trim() || null,
            client_id: form.client_id.trim(),
            client_secret: secret || null,
            scopes: parseScopes(form.scopes),
            pkce: form.pkce,
            params: params.params,
            auth_style: form.auth_style,
            scope_separator: form.scope_separator,
            require_refresh_token: form.require_refresh_token,
            default_expires_in: expiresIn,
          },
        }),
      );
    },
    meta: { suppressErrorToast: true },
    onSuccess: (app) => {
      void qc.invalidateQueries({ queryKey: keys.oauthApps });
      setForm(EMPTY_FORM);
      toast(t("connections.appSaved", { vendor: app.vendor }), "ok");
    },
  });
  const valid =
    VENDOR.test(form.vendor) &&
    !!form.authorize_url.trim() &&
    !!form.token_url.trim() &&
    !!form.client_id.trim() &&
    params.bad.length === 0 &&
    Number.isInteger(expiresIn) &&
    expiresIn > 0;
  return (
    <form
      id="app-form"
      aria-labelledby="app-form-h"
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) save.mutate();
      }}
    >
      <h3 id="app-form-h">{existing ? t("connections.editApp", { vendor: existing.vendor }) : t("connections.addApp")}</h3>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.vendor}>{t("connections.vendor")}</label>
          <input
            id={ids.vendor}
            type="text"
            value={form.vendor}
            onChange={set("vendor")}
            required
            spellCheck={false}
            placeholder="github"
            aria-invalid={(!!form.vendor && !VENDOR.test(form.vendor)) || undefined}
            aria-describedby={ids.vendor + "-h"}
          />
          <span className="hint" id={ids.vendor + "-h"}>{t("connections.vendorHint")}</span>
        </div>
        <div className="field">
          <label htmlFor={ids.client}>{t("connections.clientId")}</label>
          <input id={ids.client} type="text" value={form.client_id} onChange={set("client_id")} required spellCheck={false} />
        </div>
      </div>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.authorize}>{t("connections.authorizeUrl")}</label>
          <input id={ids.authorize} type="url" value={form.authorize_url} onChange={set("authorize_url")} required placeholder="https://provider.example.com/oauth/authorize" />
        </div>
        <div className="field">
          <label htmlFor={ids.token}>{t("connections.tokenUrl")}</label>
          <input id={ids.token} type="url" value={form.token_url} onChange={set("token_url")} required placeholder="https://provider.example.com/oauth/token" />
        </div>
        <div className="field">
          <label htmlFor={ids.revoke}>{t("connections.revokeUrl")}</label>
          <input id={ids.revoke} type="url" value={form.revoke_url} onChange={set("revoke_url")} placeholder="https://provider.example.com/oauth/revoke" />
        </div>
      </div>
      <div className="field">
        <label htmlFor={ids.secret}>{t("connections.clientSecret")}</label>
        <input id={ids.secret} ref={secretRef} type="password" autoComplete="new-password" spellCheck={false} aria-describedby={ids.secret + "-h"} />
        <span className="hint" id={ids.secret + "-h"}>
          {existing?.has_secret ? t("connections.secretKeep") : t("connections.secretNew")}
        </span>
      </div>
      <label className="checkbox" style={{ marginBottom: "0.85rem" }}>
        <input type="checkbox" checked={form.pkce} onChange={set("pkce")} />
        {t("connections.pkce")}
      </label>
      <div className="field">
        <label htmlFor={ids.scopes}>{t("connections.appScopes")}</label>
        <input id={ids.scopes} type="text" value={form.scopes} onChange={set("scopes")} spellCheck={false} placeholder="read:user repo" aria-describedby={ids.scopes + "-h"} />
        <span className="hint" id={ids.scopes + "-h"}>{t("connections.appScopesHint")}</span>
      </div>
      <div className="field">
        <label htmlFor={ids.params}>{t("connections.params")}</label>
        <textarea
          id={ids.params}
          value={form.params}
          rows={2}
          spellCheck={false}
          onChange={set("params")}
          placeholder="audience=api.example.com"
          aria-invalid={params.bad.length > 0 || undefined}
          aria-describedby={ids.params + "-h"}
        />
        <span className="hint" id={ids.params + "-h"}>{t("connections.paramsHint")}</span>
        {params.bad.length > 0 && <span className="error">{t("connections.paramsBad", { lines: params.bad.join(", ") })}</span>}
      </div>
      <div className="form-row">
        <div className="field">
          <label htmlFor={ids.style}>{t("connections.authStyle")}</label>
          <select id={ids.style} value={form.auth_style} onChange={set("auth_style")}>
            <option value="basic">{t("connections.authBasic")}</option>
            <option value="post">{t("connections.authPost")}</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.separator}>{t("connections.scopeSeparator")}</label>
          <select id={ids.separator} value={form.scope_separator} onChange={set("scope_separator")}>
            <option value=" ">{t("connections.separatorSpace")}</option>
            <option value=",">{t("connections.separatorComma")}</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.expires}>{t("connections.defaultExpiresIn")}</label>
          <input id={ids.expires} type="number" min={60} step={1} value={form.default_expires_in} onChange={set("default_expires_in")} required />
        </div>
      </div>
      <label className="checkbox" style={{ marginBottom: "0.85rem" }}>
        <input type="checkbox" checked={form.require_refresh_token} onChange={set("require_refresh_token")} />
        {t("connections.requireRefresh")}
      </label>
      <ErrorNote error={save.error} title={t("connections.appRefused")} />
      <div className="row">
        <button type="submit" className="primary" disabled={!valid || save.isPending}>
          {t("connections.saveApp")}
        </button>
        {form !== EMPTY_FORM && (
          <button
            type="button"
            onClick={() => {
              setForm(EMPTY_FORM);
              save.reset();
              if (secretRef.current) secretRef.current.value = "";
            }}
          >
            {t("common.reset")}
          </button>
        )}
      </div>
    </form>
  );
}

/** Admins: the vendors' OAuth apps, the redirect URI to register at each provider, and the editor. */
function OAuthApps() {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const apps = useOAuthApps();
  const redirect = useRedirectUri();
  const [form, setForm] = useState<AppForm>(EMPTY_FORM);
  const [toDelete, setToDelete] = useState<string | null>(null);
  const editorRef = useRef<HTMLDivElement>(null);
  const del = useMutation({
    mutationFn: (vendor: string) => call(api.DELETE("/api/oauth/apps/{vendor}", { params: { path: { vendor } } })),
    meta: { suppressErrorToast: true },
    onSuccess: (_, vendor) => {
      setToDelete(null);
      void qc.invalidateQueries({ queryKey: keys.oauthApps });
      toast(t("connections.appDeleted", { vendor }), "ok");
    },
  });
  return (
    <section className="card" aria-labelledby="apps-h">
      <h2 id="apps-h">{t("connections.apps")}</h2>
      <p className="muted small">{t("connections.appsHelp")}</p>
      <CopyBlock label={t("connections.redirectUri")} value={redirect.data?.redirect_uri ?? callbackUrl()} rows={1} />
      {apps.isPending && <Loading />}
      <ErrorNote error={apps.error} />
      {apps.data?.length === 0 && <Empty>{t("connections.noAppsYet")}</Empty>}
      {!!apps.data?.length && (
        <div className="table-wrap" style={{ marginBottom: "1rem" }}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("connections.vendor")}</th>
                <th scope="col">{t("connections.clientId")}</th>
                <th scope="col">{t("connections.endpoints")}</th>
                <th scope="col">{t("connections.appScopes")}</th>
                <th scope="col">{t("connections.clientSecret")}</th>
                <th scope="col">{t("common.updated")}</th>
                <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
              </tr>
            </thead>
            <tbody>
              {apps.data.map((app) => (
                <tr key={app.vendor}>
                  <td><strong>{app.vendor}</strong></td>
                  <td className="mono small">{app.client_id}</td>
                  <td className="mono small">
                    <div>{app.authorize_url}</div>
                    <div>{app.token_url}</div>
                    {app.revoke_url && <div>{app.revoke_url}</div>}
                  </td>
                  <td className={app.scopes.length ? "mono small" : "muted"}>{app.scopes.join(" ") || "—"}</td>
                  <td>
                    {app.has_secret ? (
                      <span className="badge ok">{t("connections.secretStored")}</span>
                    ) : (
                      <span className="badge">{app.pkce ? t("connections.publicClient") : t("connections.noSecret")}</span>
                    )}
                  </td>
                  <td className="small">{fmtTime(app.updated_at)}</td>
                  <td>
                    <div className="row">
                      <button
                        type="button"
                        className="small"
                        aria-label={t("connections.editNamed", { vendor: app.vendor })}
                        onClick={() => {
                          setForm(formOf(app));
                          editorRef.current?.scrollIntoView({ block: "start" });
                        }}
                      >
                        {t("common.edit")}
                      </button>
                      <button
                        type="button"
                        className="small"
                        aria-label={t("connections.deleteNamed", { vendor: app.vendor })}
                        onClick={() => setToDelete(app.vendor)}
                      >
                        {t("common.delete")}
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div ref={editorRef}>{apps.data && <AppEditor apps={apps.data} form={form} setForm={setForm} />}</div>
      <ConfirmDialog
        open={!!toDelete}
        title={t("connections.deleteAppTitle", { vendor: toDelete ?? "" })}
        body={t("connections.deleteAppBody")}
        confirmLabel={t("common.delete")}
        busy={del.isPending}
        error={del.error}
        onConfirm={() => toDelete && del.mutate(toDelete)}
        onClose={() => {
          setToDelete(null);
          del.reset();
        }}
      />
    </section>
  );
}

export function Connections() {
  const { t } = useTranslation();
  const me = useMe();
  const isAdmin = me.data?.role === "admin";
  return (
    <>
      <PageHead title={t("connections.title")} subtitle={t("connections.subtitle")} />
      {me.data?.view_as && <div className="alert warn">{t("connections.readOnly")}</div>}
      <Accounts owner="me" />
      {isAdmin && <Accounts owner="operator" />}
      {isAdmin && <OAuthApps />}
    </>
  );
}
