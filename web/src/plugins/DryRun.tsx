import { useMutation } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, call, type PluginDetail } from "../api/client";
import { useProfiles } from "../api/queries";
import { ErrorNote } from "../components/common";
import { fmtNum, fmtUs } from "../format";

/** A sample input per kind, to start from (the fields are in sdk/README.md). */
const SAMPLES: Record<string, unknown> = {
  "egress-policy": { server: "my-server", host: "api.example.com", port: 443, method: "GET", path: "/" },
  "credential-injector": {
    server: "my-server",
    method: "GET",
    host: "api.example.com",
    port: 443,
    path: "/v1/me",
    header_names: ["authorization"],
    placeholders: [],
    grants: [],
  },
  "auth-mapper": { issuer: "https://idp.example.com", subject: "alice", claims: { groups: ["ops"] } },
  "audit-sink": {
    events: [{ kind: "mcp.tool_call", actor: "profile:demo", profile: "demo", server: "echo", outcome: "ok", detail: {} }],
  },
  "mcp-filter": { server: "echo", method: "tools/call", name: "echo", params: { name: "echo", arguments: { message: "hi" } } },
};

/**
 * A dry run: one hook of the plugin on a sample input, under the production limits, in an instance of its
 * own (POST /api/plugins/{name}/test). With the configuration being edited when it is valid, so a change
 * can be tried before it is saved.
 */
export function DryRun({ plugin, draft }: { plugin: PluginDetail; draft: { config: unknown } | null }) {
  const { t } = useTranslation();
  const profiles = useProfiles();
  const ids = { call: useId(), profile: useId(), draft: useId() };
  const [text, setText] = useState(() => JSON.stringify(SAMPLES[plugin.kind] ?? {}, null, 2));
  const [profile, setProfile] = useState("");
  const [useDraft, setUseDraft] = useState(true);
  const parsed = useMemo((): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } => {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: t("dryRun.notObject") };
      return { ok: true, value: value as Record<string, unknown> };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }, [text, t]);
  const withDraft = useDraft && draft != null;
  const run = useMutation({
    mutationFn: (input: Record<string, unknown>) =>
      call(
        api.POST("/api/plugins/{name}/test", {
          params: { path: { name: plugin.name } },
          body: { call: input, config: withDraft ? draft.config : null, profile: profile || null },
        }),
      ),
    meta: { suppressErrorToast: true },
  });
  const r = run.data;
  return (
    <section className="card" aria-labelledby="dry-h">
      <h2 id="dry-h">{t("dryRun.title")}</h2>
      <p className="muted small">{t("dryRun.help")}</p>
      <div className="field">
        <label htmlFor={ids.call}>{t("dryRun.input")}</label>
        <textarea
          id={ids.call}
          value={text}
          rows={Math.min(16, Math.max(6, text.split("\n").length + 1))}
          spellCheck={false}
          aria-invalid={!parsed.ok}
          onChange={(e) => setText(e.target.value)}
        />
        {!parsed.ok && <span className="error">{parsed.error}</span>}
      </div>
      <div className="row">
        <div className="field">
          <label htmlFor={ids.profile}>{t("dryRun.profile")}</label>
          <select id={ids.profile} value={profile} onChange={(e) => setProfile(e.target.value)}>
            <option value="">{t("dryRun.noProfile")}</option>
            {(profiles.data ?? []).map((p) => (
              <option key={p.slug} value={p.slug}>{p.slug}</option>
            ))}
          </select>
        </div>
        {draft != null && (
          <label className="checkbox" htmlFor={ids.draft}>
            <input id={ids.draft} type="checkbox" checked={useDraft} onChange={(e) => setUseDraft(e.target.checked)} />
            {t("dryRun.useDraft")}
          </label>
        )}
      </div>
      <button type="button" className="primary" disabled={!parsed.ok || run.isPending} onClick={() => parsed.ok && run.mutate(parsed.value)}>
        {t("dryRun.run")}
      </button>
      <div aria-live="polite" style={{ marginTop: "0.75rem" }}>
        <ErrorNote error={run.error} title={t("dryRun.refused")} />
        {r && (
          <dl className="kv" data-testid="dry-run-result">
            <dt>{t("dryRun.answer")}</dt>
            <dd>
              {r.answer != null ? (
                <code>{r.answer}</code>
              ) : (
                <span className="danger-text">{t("dryRun.failed", { reason: r.failure ?? "" })}</span>
              )}
            </dd>
            {r.fuel != null && (
              <>
                <dt>{t("dryRun.cost")}</dt>
                <dd>
                  {t("dryRun.costValue", {
                    fuel: fmtNum(r.fuel),
                    kib: fmtNum(Math.round((r.memory_bytes ?? 0) / 1024)),
                    time: fmtUs(r.elapsed_us ?? 0),
                  })}
                </dd>
              </>
            )}
          </dl>
        )}
      </div>
    </section>
  );
}
