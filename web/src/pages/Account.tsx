import { useId, useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { useMe } from "../api/queries";
import { Loading, PageHead } from "../components/common";
import { fmtTime } from "../format";
import { doLogout, LanguagePicker } from "../Shell";
import { setTheme, storedTheme, type ThemeChoice } from "../theme";

export function Account() {
  const { t } = useTranslation();
  const me = useMe();
  const themeId = useId();
  const theme = useSyncExternalStore(
    (cb) => (window.addEventListener("gigmcp-theme", cb), () => window.removeEventListener("gigmcp-theme", cb)),
    storedTheme,
  );
  if (!me.data) return <Loading />;
  const u = me.data;
  const access = u.role === "admin" || u.profiles === "all" ? t("account.allProfiles") : u.profiles.length ? u.profiles.join(", ") : t("account.ownOnly");
  return (
    <>
      <PageHead title={t("account.title")} />
      <div className="grid grid-2">
        <section className="card" aria-labelledby="who">
          <h2 id="who">{t("account.who")}</h2>
          <dl className="kv">
            <dt>{t("account.name")}</dt>
            <dd>{u.name || "—"}</dd>
            <dt>{t("account.email")}</dt>
            <dd>{u.email || "—"}</dd>
            <dt>{t("account.role")}</dt>
            <dd>
              <span className={`badge ${u.role === "admin" ? "accent" : ""}`}>{t(`role.${u.role}`)}</span>
            </dd>
            <dt>{t("account.identity")}</dt>
            <dd className="mono">
              {u.issuer} · {u.subject}
            </dd>
            <dt>{t("account.access")}</dt>
            <dd>{access}</dd>
            <dt>{t("account.lastLogin")}</dt>
            <dd>{fmtTime(u.last_login_at)}</dd>
          </dl>
          <div style={{ marginTop: "1rem" }}>
            <button type="button" onClick={doLogout}>
              {t("account.logout")}
            </button>
          </div>
        </section>
        <section className="card" aria-labelledby="prefs">
          <h2 id="prefs">{t("account.preferences")}</h2>
          <div className="field">
            <label htmlFor={themeId}>{t("account.theme")}</label>
            <select id={themeId} value={theme} onChange={(e) => setTheme(e.target.value as ThemeChoice)}>
              <option value="system">{t("theme.system")}</option>
              <option value="light">{t("theme.light")}</option>
              <option value="dark">{t("theme.dark")}</option>
            </select>
          </div>
          <LanguagePicker visibleLabel />
        </section>
      </div>
    </>
  );
}
