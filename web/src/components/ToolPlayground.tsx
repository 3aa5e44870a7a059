import { useMutation, useQuery } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "wouter";
import { api, call } from "../api/client";
import { ErrorNote, Loading } from "./common";

/**
 * Lists the profile's tools and calls one through the real pipeline (servers, plugins, audit) as the
 * logged-in user. Listing starts the profile's servers, so it happens only on request.
 */
export function ToolPlayground({ slug }: { slug: string }) {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [args, setArgs] = useState("{}");
  const ids = { tool: useId(), args: useId() };
  const tools = useQuery({
    queryKey: ["profiles", slug, "tools"],
    queryFn: () => call(api.GET("/api/profiles/{slug}/tools", { params: { path: { slug } } })),
    enabled: open,
    meta: { suppressErrorToast: true },
  });
  const parsed = useMemo(() => {
    try {
      const v: unknown = JSON.parse(args || "{}");
      return v && typeof v === "object" && !Array.isArray(v) ? { ok: true as const, value: v as Record<string, unknown> } : { ok: false as const };
    } catch {
      return { ok: false as const };
    }
  }, [args]);
  const run = useMutation({
    mutationFn: () =>
      call(api.POST("/api/profiles/{slug}/tools/call", { params: { path: { slug } }, body: { name, arguments: parsed.ok ? parsed.value : {} } })),
    meta: { suppressErrorToast: true },
  });
  const tool = tools.data?.items.find((x) => x.name === name);
  const hidden = tools.data?.items.filter((x) => x.hidden_by.length > 0) ?? [];
  const plugins = (names: string[]) =>
    names.map((p, i) => (
      <span key={p}>
        {i > 0 && ", "}
        <Link href={`/plugins/${encodeURIComponent(p)}`}>{p}</Link>
      </span>
    ));
  const rpcError = run.data?.error as { message?: string; data?: { plugin?: string } } | null | undefined;
  return (
    <section className="card" aria-labelledby="tools-h">
      <div className="card-head">
        <h2 id="tools-h">{t("tools.title")}</h2>
        {!open && (
          <button type="button" onClick={() => setOpen(true)}>
            {t("tools.list")}
          </button>
        )}
      </div>
      <p className="muted small">{t("tools.help")}</p>
      {open && tools.isPending && <Loading />}
      {tools.isError && <ErrorNote error={tools.error} />}
      {tools.data && tools.data.items.length === hidden.length && <p className="muted">{t("tools.none")}</p>}
      {hidden.length > 0 && (
        <div className="alert warn" data-testid="hidden-tools">
          <strong>{t("tools.hiddenTitle")}</strong>
          <ul>
            {hidden.map((x) => (
              <li key={x.name}>
                <code>{x.name}</code> ({x.server}): {t("tools.hiddenBy")} {plugins(x.hidden_by)}
              </li>
            ))}
          </ul>
        </div>
      )}
      {tools.data && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (name && parsed.ok) run.mutate();
          }}
        >
          <div className="field">
            <label htmlFor={ids.tool}>{t("tools.tool")}</label>
            {/* A name can be typed as well as picked: a tool a policy hides from the list can still be
                called, to see the denial a client would get. */}
            <input
              id={ids.tool}
              list={ids.tool + "-names"}
              value={name}
              spellCheck={false}
              autoComplete="off"
              placeholder={t("tools.choose")}
              onChange={(e) => {
                setName(e.target.value);
                run.reset();
              }}
            />
            <datalist id={ids.tool + "-names"}>
              {tools.data.items.map((x) => (
                <option key={x.name} value={x.name}>
                  {(x.server ?? "") + (x.hidden_by.length ? ` (${t("tools.hidden")})` : "")}
                </option>
              ))}
            </datalist>
            {tool?.description && <span className="hint">{tool.description}</span>}
            {tool && tool.hidden_by.length > 0 && (
              <span className="hint">
                {t("tools.hiddenHint")} {plugins(tool.hidden_by)}
              </span>
            )}
          </div>
          {tool && (
            <details>
              <summary className="small">{t("tools.schema")}</summary>
              <div className="codeblock">
                <pre>{JSON.stringify(tool.input_schema, null, 2)}</pre>
              </div>
            </details>
          )}
          <div className="field" style={{ marginTop: "0.5rem" }}>
            <label htmlFor={ids.args}>{t("tools.arguments")}</label>
            <textarea id={ids.args} value={args} rows={4} spellCheck={false} aria-invalid={!parsed.ok} onChange={(e) => setArgs(e.target.value)} />
            {!parsed.ok && <span className="error">{t("tools.argsObject")}</span>}
          </div>
          <button type="submit" className="primary" disabled={!name || !parsed.ok || run.isPending}>
            {run.isPending ? t("common.working") : t("tools.call")}
          </button>
        </form>
      )}
      <ErrorNote error={run.error} />
      {run.data && (
        <div style={{ marginTop: "0.75rem" }} aria-live="polite">
          {rpcError ? (
            <div className="alert error">
              <strong>{t("tools.refused")}</strong> {rpcError.message}
              {rpcError.data?.plugin && (
                <div>
                  {t("audit.decidedBy")}{" "}
                  <Link href={`/plugins/${encodeURIComponent(rpcError.data.plugin)}`}>{rpcError.data.plugin}</Link>
                </div>
              )}
            </div>
          ) : (
            <h3>{t("tools.result")}</h3>
          )}
          <div className="codeblock">
            <pre data-testid="tool-result">{JSON.stringify(rpcError ? run.data.error : run.data.result, null, 2)}</pre>
          </div>
        </div>
      )}
    </section>
  );
}
