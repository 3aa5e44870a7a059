import { useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { ApiError, isStale } from "../api/client";

export function Loading() {
  const { t } = useTranslation();
  return (
    <p className="loading" role="status">
      {t("common.loading")}
    </p>
  );
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** An inline error next to what it concerns; the message is the server's, rendered as text. */
export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  const { t } = useTranslation();
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div className="alert error" role="alert">
      <strong>{title ?? t("common.error")}</strong>
      {code && <span className="muted small"> ({code})</span>}
      <div>{errorText(error)}</div>
    </div>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function PageHead({ title, subtitle, children }: { title: string; subtitle?: string; children?: React.ReactNode }) {
  return (
    <div className="page-head">
      <div>
        <h1>{title}</h1>
        {subtitle && <p>{subtitle}</p>}
      </div>
      {children && <div className="row">{children}</div>}
    </div>
  );
}

/** Shown where a non-admin lands on an admin page (the API would answer 404 anyway). */
export function AdminOnly() {
  const { t } = useTranslation();
  return <div className="alert warn">{t("common.adminOnly")}</div>;
}

/**
 * Keyboard use of a tablist (WAI-ARIA tabs, selection following focus): the arrow keys move to the previous or
 * next tab, Home and End to the first or last, and the tab reached is selected. Tabs that are not selected
 * have `tabIndex={-1}`, so Tab leaves the tablist for the panel.
 */
export function onTabKeys(e: React.KeyboardEvent<HTMLElement>): void {
  const tabs = Array.from(e.currentTarget.querySelectorAll<HTMLButtonElement>('[role="tab"]:not([disabled])'));
  const n = tabs.length;
  const i = tabs.indexOf(document.activeElement as HTMLButtonElement);
  if (i < 0 || n === 0) return;
  const next = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
  if (next === undefined) return;
  e.preventDefault();
  tabs[next].focus();
  tabs[next].click();
}

/**
 * After a save refused as stale (412): drops the draft (`reset` shows what was loaded) and reloads the object
 * (`queryKey`); the editor's own effect then takes the gateway's current version, the draft being unedited.
 */
export function LoadCurrent({ error, reset, queryKey }: { error: unknown; reset: () => void; queryKey: QueryKey }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  if (!isStale(error)) return null;
  return (
    <button
      type="button"
      onClick={() => {
        reset();
        void qc.invalidateQueries({ queryKey });
      }}
    >
      {t("common.loadCurrent")}
    </button>
  );
}
