import i18n from "./i18n";

/**
 * A timestamp in the current language. The API gives audit times in milliseconds and most
 * `created_at`-like fields in seconds: values below 1e11 (1973 in ms) are taken as seconds.
 */
export const toMs = (t: number) => (t < 1e11 ? t * 1000 : t);
export const fmtTime = (t: number | null | undefined): string =>
  t == null ? "—" : new Date(toMs(t)).toLocaleString(i18n.language);
/** A time of day, to the minute. */
export const fmtClock = (ms: number): string =>
  new Date(ms).toLocaleTimeString(i18n.language, { hour: "2-digit", minute: "2-digit" });
export const fmtNum = (n: number | null | undefined): string =>
  n == null ? "—" : new Intl.NumberFormat(i18n.language).format(n);

export function fmtBytes(n: number | null | undefined): string {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${new Intl.NumberFormat(i18n.language, { maximumFractionDigits: i ? 1 : 0 }).format(v)} ${units[i]}`;
}

export function fmtDuration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

export function fmtUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`;
}

/** Relative time ("3 minutes ago") in the current language. */
export function fmtAgo(ms: number): string {
  const rtf = new Intl.RelativeTimeFormat(i18n.language, { numeric: "auto" });
  const diff = (ms - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 60) return rtf.format(Math.round(diff), "second");
  if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}
