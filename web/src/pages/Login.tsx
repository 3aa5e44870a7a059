import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "wouter";
import { api, call } from "../api/client";
import { ErrorNote, Loading } from "../components/common";
import { IconLogo } from "../components/icons";
import { LanguagePicker, ThemeToggle } from "../Shell";

/** Only same-site paths are accepted as a place to come back to. */
export function safeReturnTo(v: string | null): string {
  if (!v || !v.startsWith("/") || v.startsWith("//") || v.startsWith("/\\") || v.startsWith("/login")) return "/";
  return v;
}

export function Login() {
  const { t } = useTranslation();
  const [params] = useSearchParams();
  const returnTo = safeReturnTo(params.get("return_to"));
  const options = useQuery({
    queryKey: ["login-options"],
    queryFn: () => call(api.GET("/api/login-options")),
    meta: { suppressErrorToast: true },
  });

  const oidc = options.data?.oidc;
  const loginHref = oidc ? `${oidc.login_url}?return_to=${encodeURIComponent(returnTo)}` : "";
  return (
    <main className="center-page" id="main">
      <div className="card login-card">
        <div className="row" style={{ justifyContent: "space-between" }}>
          <span className="brand">
            <IconLogo /> Gig'MCP
          </span>
          <span className="row">
            <LanguagePicker />
            <ThemeToggle />
          </span>
        </div>
        <h1 style={{ marginTop: "1rem" }}>{t("login.title")}</h1>
        <p className="muted">{t("login.subtitle")}</p>
        {options.isPending && <Loading />}
        {options.isError && <ErrorNote error={options.error} />}
        {oidc && (
          <div className="stack">
            {!oidc.ready && (
              <div className="alert warn" role="status">
                {t("login.oidcNotReady")}
                {oidc.reason && <div className="small">{oidc.reason}</div>}
              </div>
            )}
            {/* A full-page navigation: the provider's redirects cannot be followed by fetch. */}
            <a className="button primary" href={loginHref}>
              {t("login.oidcButton")}
            </a>
          </div>
        )}
        {options.data && (
          <div style={{ marginTop: "1rem" }}>
            <p>{oidc ? t("login.orLink") : t("login.noOidc")}</p>
            <div className="codeblock">
              <pre>
                <code>{options.data.login_link_command}</code>
              </pre>
            </div>
            <p className="muted small" style={{ marginTop: "0.5rem" }}>
              {t("login.linkHint")}
            </p>
          </div>
        )}
      </div>
    </main>
  );
}
