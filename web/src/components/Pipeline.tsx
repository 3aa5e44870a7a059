import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import type { Plugin } from "../api/client";

export const KINDS = ["mcp-filter", "egress-policy", "credential-injector", "auth-mapper", "audit-sink"] as const;

/** The plugins that judge a profile, per kind: global bindings first, then the profile's, each in `order`. */
export function pipelineFor(plugins: Plugin[], profile: string | null) {
  const out = new Map<string, { plugin: Plugin; scope: "global" | "profile"; order: number }[]>();
  for (const p of plugins) {
    for (const b of p.bindings) {
      const scope = b.profile == null ? "global" : b.profile === profile ? "profile" : null;
      if (!scope) continue;
      const list = out.get(p.kind) ?? [];
      list.push({ plugin: p, scope, order: b.order });
      out.set(p.kind, list);
    }
  }
  for (const list of out.values())
    list.sort((a, b) => (a.scope === b.scope ? a.order - b.order : a.scope === "global" ? -1 : 1));
  return out;
}

export function PipelineView({ plugins, profile }: { plugins: Plugin[]; profile: string | null }) {
  const { t } = useTranslation();
  const pipe = pipelineFor(plugins, profile);
  const kinds = [...KINDS, ...[...pipe.keys()].filter((k) => !(KINDS as readonly string[]).includes(k))];
  return (
    <div className="stack">
      {kinds.map((kind) => {
        const steps = pipe.get(kind) ?? [];
        return (
          <div key={kind}>
            <h3>
              <span className="mono">{kind}</span>
            </h3>
            {steps.length === 0 ? (
              <p className="muted small">{t("pipeline.none")}</p>
            ) : (
              <ol className="pipeline">
                {steps.map((s, i) => (
                  <li key={s.plugin.name + s.scope}>
                    <span className="muted small">{i + 1}.</span>
                    <Link href={`/plugins/${encodeURIComponent(s.plugin.name)}`}>{s.plugin.name}</Link>
                    <span className={`badge ${s.scope === "global" ? "accent" : ""}`}>
                      {s.scope === "global" ? t("pipeline.global") : t("pipeline.profile")}
                    </span>
                    <span className="muted small">{t("pipeline.order", { n: s.order })}</span>
                    {!s.plugin.enabled && <span className="badge warn">{t("plugins.disabled")}</span>}
                  </li>
                ))}
              </ol>
            )}
          </div>
        );
      })}
      <p className="muted small">{t("pipeline.explain")}</p>
    </div>
  );
}
