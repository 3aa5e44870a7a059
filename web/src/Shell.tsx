import { useEffect, useId, useRef, useState, useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, call, logout } from "./api/client";
import { useMe } from "./api/queries";
import { Loading } from "./components/common";
import { IconLogo, IconMoon, IconSun, IconUser } from "./components/icons";
import { LANGUAGES, setLanguage, type Lang } from "./i18n";
import { fmtTime } from "./format";
import { effectiveTheme, setTheme } from "./theme";

const NAV = [
  { href: "/", key: "nav.overview", admin: false },
  { href: "/profiles", key: "nav.profiles", admin: false },
  { href: "/servers", key: "nav.servers", admin: false },
  { href: "/catalog", key: "nav.catalog", admin: false },
  { href: "/credentials", key: "nav.credentials", admin: false },
  { href: "/connections", key: "nav.connections", admin: false },
  { href: "/plugins", key: "nav.plugins", admin: true },
  { href: "/webhooks", key: "nav.webhooks", admin: true },
  { href: "/audit", key: "nav.audit", admin: false },
  { href: "/users", key: "nav.users", admin: true },
] as const;

export function useTheme(): "light" | "dark" {
  return useSyncExternalStore(
    (cb) => {
      const mq = window.matchMedia?.("(prefers-color-scheme: dark)");
      window.addEventListener("gigmcp-theme", cb);
      mq?.addEventListener("change", cb);
      return () => {
        window.removeEventListener("gigmcp-theme", cb);
        mq?.removeEventListener("change", cb);
      };
    },
    effectiveTheme,
  );
}

export function ThemeToggle() {
  const { t } = useTranslation();
  const theme = useTheme();
  const next = theme === "dark" ? "light" : "dark";
  return (
    <button type="button" className="ghost icon" onClick={() => setTheme(next)} aria-label={t(`theme.switchTo.${next}`)} title={t(`theme.switchTo.${next}`)}>
      {theme === "dark" ? <IconSun /> : <IconMoon />}
    </button>
  );
}

export function LanguagePicker({ visibleLabel = false }: { visibleLabel?: boolean }) {
  const { t, i18n } = useTranslation();
  const id = useId();
  return (
    <span className={visibleLabel ? "field" : "row"}>
      <label htmlFor={id} className={visibleLabel ? undefined : "visually-hidden"}>
        {t("account.language")}
      </label>
      <select id={id} value={i18n.language} onChange={(e) => void setLanguage(e.target.value as Lang)}>
        {LANGUAGES.map((l) => (
          <option key={l.code} value={l.code} lang={l.code}>
            {l.label}
          </option>
        ))}
      </select>
    </span>
  );
}

export async function doLogout() {
  const to = await logout().catch(() => "/login");
  window.location.assign(to);
}

function UserMenu({ name }: { name: string }) {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const menuId = useId();
  useEffect(() => {
    if (!open) return;
    const onDoc = (e: MouseEvent) => {
      if (!ref.current?.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", onDoc);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDoc);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);
  return (
    <div className="user-menu" ref={ref}>
      <button type="button" aria-expanded={open} aria-controls={menuId} onClick={() => setOpen((o) => !o)}>
        <IconUser /> <span>{name}</span>
      </button>
      {open && (
        <div className="menu" id={menuId}>
          <Link href="/account" onClick={() => setOpen(false)}>
            {t("nav.account")}
          </Link>
          <button type="button" onClick={doLogout}>
            {t("account.logout")}
          </button>
        </div>
      )}
    </div>
  );
}

/** While an admin views as someone: who, until when, read-only, and the way back. */
function ViewAsBanner({ who, admin, until }: { who: string; admin: string; until: number }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const stop = useMutation({
    mutationFn: () => call(api.DELETE("/api/me/view-as")),
    onSuccess: () => {
      // Everything shown was the other user's.
      qc.clear();
      navigate("/users");
    },
  });
  return (
    <div className="view-as-banner" role="region" aria-label={t("viewAs.region")}>
      <span>{t("viewAs.banner", { who, admin, until: fmtTime(until) })}</span>
      <button type="button" onClick={() => stop.mutate()} disabled={stop.isPending}>
        {t("viewAs.stop")}
      </button>
    </div>
  );
}

export function Shell({ children }: { children: React.ReactNode }) {
  const { t } = useTranslation();
  const [location] = useLocation();
  const me = useMe();
  if (me.isPending || me.isError) {
    // A 401 redirects to /login (global handler); anything else is shown.
    return (
      <main className="main" id="main">
        {me.isError ? <p className="alert error">{t("common.loadFailed")}</p> : <Loading />}
      </main>
    );
  }
  const isAdmin = me.data.role === "admin";
  const current = (href: string) => (href === "/" ? location === "/" : location === href || location.startsWith(href + "/"));
  return (
    <div className="app">
      <a href="#main" className="skip-link">
        {t("nav.skip")}
      </a>
      <header className="topbar">
        <Link href="/" className="brand">
          <IconLogo /> Gig'MCP
        </Link>
        <nav className="nav" aria-label={t("nav.main")}>
          {NAV.filter((n) => isAdmin || !n.admin).map((n) => (
            <Link key={n.href} href={n.href} aria-current={current(n.href) ? "page" : undefined}>
              {t(n.key)}
            </Link>
          ))}
        </nav>
        <div className="topbar-tools">
          <LanguagePicker />
          <ThemeToggle />
          <UserMenu name={me.data.name || me.data.email || me.data.subject} />
        </div>
      </header>
      {me.data.view_as && (
        <ViewAsBanner
          who={me.data.name || me.data.email || me.data.subject}
          admin={me.data.view_as.admin_name}
          until={me.data.view_as.until}
        />
      )}
      <main className="main" id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
