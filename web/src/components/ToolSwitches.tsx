import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, call } from "../api/client";
import { ErrorNote, Loading } from "./common";

/** A profile's catalog tools, each on or off for this profile: a tool its entry marks off by default stays
 * hidden from clients until switched on here. */
export function ToolSwitches({ slug }: { slug: string }) {
  const { t } = useTranslation();
  const qc = useQueryClient();
  const key = ["profiles", slug, "tool-switches"] as const;
  const q = useQuery({
    queryKey: key,
    queryFn: () => call(api.GET("/api/profiles/{slug}/tool-switches", { params: { path: { slug } } })),
    meta: { suppressErrorToast: true },
  });
  const flip = useMutation({
    mutationFn: (body: { tool: string; enabled: boolean | null }) =>
      call(api.POST("/api/profiles/{slug}/tool-switches", { params: { path: { slug } }, body })),
    meta: { suppressErrorToast: true },
    onSuccess: (tools) => qc.setQueryData(key, tools),
  });
  if (q.isPending) return <Loading />;
  if (q.isError) return <ErrorNote error={q.error} />;
  if (q.data.length === 0) return null;
  return (
    <section className="card" aria-labelledby="switches-h">
      <h2 id="switches-h">{t("toolSwitches.title")}</h2>
      <p className="muted small">{t("toolSwitches.help")}</p>
      <ErrorNote error={flip.error} />
      <ul className="plain">
        {q.data.map((tool) => {
          const id = `${tool.server}/${tool.tool}`;
          return (
            <li key={id} className="row">
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={tool.enabled}
                  disabled={flip.isPending}
                  onChange={(e) => flip.mutate({ tool: id, enabled: e.target.checked })}
                />
                <span className="mono">{id}</span>
              </label>
              {tool.switched != null ? (
                <button type="button" className="ghost small" disabled={flip.isPending} onClick={() => flip.mutate({ tool: id, enabled: null })}>
                  {t("toolSwitches.reset", { state: tool.default ? t("catalog.on") : t("catalog.off") })}
                </button>
              ) : (
                <span className="muted small">{tool.default ? t("toolSwitches.default") : t("toolSwitches.offByDefault")}</span>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
