import { useEffect, useId, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import type { LogLine } from "../api/client";
import i18n from "../i18n";

/** Lines the page keeps; older ones scroll away (the gateway keeps its own, bounded, copy). */
const KEEP = 2000;

type Status = "connecting" | "live" | "reconnecting" | "closed";

const clock = (ms: number) =>
  new Date(ms).toLocaleTimeString(i18n.language, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/**
 * A server's log as it is written: its sandboxes' stderr and the gateway's lines about them, from the
 * follow stream (server-sent events; the browser reconnects on its own, resuming after the last line).
 */
export function ServerLogs({ server }: { server: string }) {
  const { t } = useTranslation();
  const [lines, setLines] = useState<LogLine[]>([]);
  const [status, setStatus] = useState<Status>("connecting");
  /** While paused: the last line shown (newer ones wait). */
  const [pausedAt, setPausedAt] = useState<number | null>(null);
  const [profile, setProfile] = useState("");
  const box = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const filterId = useId();

  useEffect(() => {
    setLines([]);
    setStatus("connecting");
    const source = new EventSource(`/api/servers/${encodeURIComponent(server)}/logs/follow`);
    source.onopen = () => setStatus("live");
    source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    source.addEventListener("line", (e) => {
      const line = JSON.parse((e as MessageEvent<string>).data) as LogLine;
      setLines((old) => {
        if (old.length && old[old.length - 1].seq >= line.seq) return old;
        const next = old.length >= KEEP ? old.slice(old.length - KEEP + 1) : old.slice();
        next.push(line);
        return next;
      });
    });
    return () => source.close();
  }, [server]);

  const shown = lines.filter(
    (l) =>
      (pausedAt == null || l.seq <= pausedAt) &&
      (!profile || (profile === "-" ? l.profile === "" : l.profile === profile)),
  );
  const profiles = [...new Set(lines.map((l) => l.profile))].sort();

  useEffect(() => {
    const el = box.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [shown.length]);

  return (
    <div className="logs">
      <div className="row">
        <span className={"badge " + (status === "live" ? "ok" : status === "closed" ? "danger" : "warn")} role="status">
          {t(`logs.${status}`)}
        </span>
        <button
          type="button"
          aria-pressed={pausedAt != null}
          onClick={() => setPausedAt(pausedAt == null ? (lines.at(-1)?.seq ?? 0) : null)}
        >
          {pausedAt == null ? t("logs.pause") : t("logs.resume")}
        </button>
        <label htmlFor={filterId} className="small">{t("logs.profile")}</label>
        <select id={filterId} value={profile} onChange={(e) => setProfile(e.target.value)}>
          <option value="">{t("logs.allProfiles")}</option>
          {profiles.map((p) => (
            <option key={p || "-"} value={p || "-"}>{p || t("logs.probe")}</option>
          ))}
        </select>
        <span className="muted small">{t("logs.count", { count: shown.length })}</span>
      </div>
      <div
        ref={box}
        className="log-lines"
        role="log"
        aria-label={t("logs.title")}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {shown.length === 0 ? (
          <p className="muted">{t("logs.empty")}</p>
        ) : (
          shown.map((l) => (
            <div key={l.seq} className={"log-line " + l.stream}>
              <time dateTime={new Date(l.at_ms).toISOString()}>{clock(l.at_ms)}</time>
              <span className="log-source" title={t("logs.sandbox", { n: l.sandbox })}>
                {l.profile || t("logs.probe")}#{l.sandbox}
              </span>
              <span className="log-text">{l.stream === "gateway" ? `⟨${t("logs.gateway")}⟩ ${l.text}` : l.text}</span>
            </div>
          ))
        )}
      </div>
    </div>
  );
}
