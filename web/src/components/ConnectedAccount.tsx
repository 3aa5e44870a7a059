import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { api, call, type Connection, type Server } from "../api/client";
import { connectUrl, useConnections, useOAuthApps, type Owner } from "../api/connections";
import { useMe } from "../api/queries";
import { fmtAgo, fmtTime } from "../format";
import { ErrorNote, Loading } from "./common";

/** A connection's state: a badge, and why when it must be connected again. */
export function ConnectionState({ connection }: { connection?: Connection }) {
  const { t } = useTranslation();
  if (!connection) return <span className="badge">{t("connections.notConnected")}</span>;
  if (connection.state === "ok") return <span className="badge ok">{t("connections.ok")}</span>;
  return (
    <>
      <span className="badge danger">{t("connections.needsReconnect")}</span>
      {connection.detail && <div className="small danger-text">{connection.detail}</div>}
    </>
  );
}

/** When the access token expires, when it was last refreshed (or connected), whether it can be refreshed. */
export function TokenTimes({ connection }: { connection: Connection }) {
  const { t } = useTranslation();
  const expires = connection.expires_at * 1000;
  const refreshed = connection.refreshed_at;
  return (
    <div className="small">
      <div title={fmtTime(connection.expires_at)}>
        {expires > Date.now() ? t("connections.expires", { when: fmtAgo(expires) }) : t("connections.expired", { when: fmtAgo(expires) })}
      </div>
      <div className="muted" title={fmtTime(refreshed ?? connection.connected_at)}>
        {refreshed != null
          ? t("connections.refreshed", { when: fmtAgo(refreshed * 1000) })
          : t("connections.connectedWhen", { when: fmtAgo(connection.connected_at * 1000) })}
      </div>
      {!connection.refreshable && <div className="muted">{t("connections.notRefreshable")}</div>}
    </div>
  );
}

/**
 * Connect (or reconnect) an account: a link to the gateway's start of the flow, which redirects to the
 * provider (a full navigation, never a fetch). While an admin views as another user it is refused, so it is
 * shown disabled.
 */
export function ConnectLink(props: {
  vendor: string;
  to: { server?: string; returnTo?: string };
  owner?: Owner;
  reconnect: boolean;
  primary: boolean;
}) {
  const { t } = useTranslation();
  const me = useMe();
  const label = props.reconnect ? t("connections.reconnect") : t("connections.connect");
  const named = props.reconnect
    ? t("connections.reconnectNamed", { vendor: props.vendor })
    : t("connections.connectNamed", { vendor: props.vendor });
  const look = props.primary ? "small primary" : "small";
  if (me.data?.view_as)
    return (
      <button type="button" className={look} disabled title={t("connections.readOnly")} aria-label={named}>
        {label}
      </button>
    );
  return (
    <a className={`button ${look}`} href={connectUrl(props.vendor, props.to, props.owner)} aria-label={named}>
      {label}
    </a>
  );
}

/** The oauth2 vendors a catalog entry's credentials name (`entry@version`), or none. */
function useCatalogVendors(catalog: string | undefined): string[] {
  const at = catalog?.lastIndexOf("@") ?? -1;
  const name = catalog && at > 0 ? catalog.slice(0, at) : catalog;
  const version = catalog && at > 0 ? catalog.slice(at + 1) : undefined;
  const q = useQuery({
    queryKey: ["catalog", name ?? "", version ?? ""],
    queryFn: () => call(api.GET("/api/catalog/{name}", { params: { path: { name: name ?? "" }, query: version ? { version } : {} } })),
    enabled: !!name,
    // Without a catalog (or the entry) the installed apps' lists still say what the server needs.
    meta: { suppressErrorToast: true },
    staleTime: 60_000,
  });
  return (q.data?.credential_details ?? []).filter((c) => c.type === "oauth2" && c.vendor).map((c) => c.vendor as string);
}

/**
 * On a server's page: the accounts it acts with (its oauth2 credentials' vendors, from the OAuth apps'
 * `servers` and, for a catalog toolpack, its entry), the caller's connection to each, and the way to connect.
 * Nothing when it needs none.
 */
export function ServerAccountCard({ server }: { server: Server }) {
  const { t } = useTranslation();
  const apps = useOAuthApps();
  const fromCatalog = useCatalogVendors(server.catalog ?? undefined);
  const fromApps = (apps.data ?? []).filter((a) => a.servers.includes(server.name)).map((a) => a.vendor);
  const vendors = [...new Set([...fromApps, ...fromCatalog])].sort();
  const mine = useConnections("me", vendors.length > 0);
  if (vendors.length === 0) return null;
  return (
    <section className="card" aria-labelledby="account-h" style={{ marginBottom: "1rem" }}>
      <h2 id="account-h">{t("connections.serverTitle")}</h2>
      {(apps.isPending || mine.isPending) && <Loading />}
      <ErrorNote error={apps.error ?? mine.error} />
      {apps.data && mine.data && (
        <ul className="plain">
          {vendors.map((vendor) => {
            const app = apps.data.find((a) => a.vendor === vendor);
            const connection = mine.data.find((c) => c.vendor === vendor);
            return (
              <li key={vendor} className="stack" style={{ gap: "0.35rem" }}>
                <div className="row">
                  <span>{t("connections.serverNeeds", { vendor })}</span>
                  <ConnectionState connection={connection} />
                </div>
                {connection && connection.state === "ok" && <TokenTimes connection={connection} />}
                {app ? (
                  <div className="row">
                    <ConnectLink
                      vendor={vendor}
                      to={{ server: server.name }}
                      reconnect={!!connection}
                      primary={!connection || connection.state !== "ok"}
                    />
                  </div>
                ) : (
                  <p className="muted small">{t("connections.serverNoApp", { vendor })}</p>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <p className="muted small" style={{ marginTop: "0.75rem", marginBottom: 0 }}>
        {t("connections.serverHelp")} <Link href="/connections">{t("connections.manage")}</Link>
      </p>
    </section>
  );
}
