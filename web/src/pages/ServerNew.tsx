import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { useLocation } from "wouter";
import { api, call, type CreateServer } from "../api/client";
import { keys, useIsAdmin } from "../api/queries";
import { AdminOnly, ErrorNote, onTabKeys, PageHead } from "../components/common";
import { toast } from "../components/toasts";

const KINDS = ["builtin", "command", "npm", "pypi", "url"] as const;
type Kind = (typeof KINDS)[number];
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const lines = (s: string) =>
  s
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** `KEY=VALUE` lines into an object; returns the first bad line instead when there is one. */
export function parseEnv(s: string): Record<string, string> | { bad: string } {
  const env: Record<string, string> = {};
  for (const l of lines(s)) {
    const i = l.indexOf("=");
    if (i <= 0) return { bad: l };
    env[l.slice(0, i).trim()] = l.slice(i + 1);
  }
  return env;
}

function Field(props: { label: string; hint?: string; value: string; onChange: (v: string) => void; multiline?: boolean; required?: boolean; invalid?: boolean; placeholder?: string; mono?: boolean }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.multiline ? (
        <textarea id={id} value={props.value} rows={3} spellCheck={false} placeholder={props.placeholder} aria-describedby={props.hint ? id + "-h" : undefined} onChange={(e) => props.onChange(e.target.value)} />
      ) : (
        <input id={id} type="text" value={props.value} required={props.required} autoComplete="off" spellCheck={false} placeholder={props.placeholder} aria-invalid={props.invalid || undefined} aria-describedby={props.hint ? id + "-h" : undefined} className={props.mono ? "mono" : undefined} onChange={(e) => props.onChange(e.target.value)} />
      )}
      {props.hint && <span className="hint" id={id + "-h"}>{props.hint}</span>}
    </div>
  );
}

export function ServerNew() {
  const { t } = useTranslation();
  const isAdmin = useIsAdmin();
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const [kind, setKind] = useState<Kind>("builtin");
  const [f, setF] = useState({
    name: "", prefix: "", builtin: "echo", command: "", npm: "", pypi: "", bin: "", runtime: "", url: "",
    args: "", env: "", mounts: "", egress: "", memory: "", pids: "", state_size: "",
  });
  const [perSession, setPerSession] = useState(false);
  const [usePrefix, setUsePrefix] = useState(false);
  const [elapsed, setElapsed] = useState(0);
  const set = (k: keyof typeof f) => (v: string) => setF((old) => ({ ...old, [k]: v }));
  const env = parseEnv(f.env);
  const envBad = "bad" in env ? (env.bad as string) : null;

  const create = useMutation({
    mutationFn: () => {
      const body: CreateServer = {
        name: f.name,
        args: kind === "url" || kind === "builtin" ? [] : lines(f.args),
        env: envBad ? {} : (env as Record<string, string>),
        mounts: lines(f.mounts),
        egress: lines(f.egress),
        per_session: perSession,
      };
      if (kind === "builtin") body.builtin = f.builtin;
      if (kind === "command") body.command = f.command;
      if (kind === "npm") body.npm = f.npm;
      if (kind === "pypi") body.pypi = f.pypi;
      if (kind === "url") body.url = f.url;
      if ((kind === "npm" || kind === "pypi") && f.bin) body.bin = f.bin;
      if ((kind === "npm" || kind === "pypi") && f.runtime) body.runtime = f.runtime;
      if (usePrefix) body.prefix = f.prefix;
      if (f.memory) body.memory = f.memory;
      if (f.pids) body.pids = Number(f.pids);
      if (f.state_size) body.state_size = f.state_size;
      return call(api.POST("/api/servers", { body }));
    },
    meta: { suppressErrorToast: true },
    onSuccess: (s) => {
      void qc.invalidateQueries({ queryKey: keys.servers });
      toast(t("serverNew.created", { name: s.name }), "ok");
      navigate(`/servers/${encodeURIComponent(s.name)}`);
    },
  });

  // npm/PyPI installs run inside the request and can take a minute: show the time spent.
  useEffect(() => {
    if (!create.isPending) return;
    setElapsed(0);
    const start = Date.now();
    const timer = window.setInterval(() => setElapsed(Math.floor((Date.now() - start) / 1000)), 1000);
    return () => window.clearInterval(timer);
  }, [create.isPending]);

  if (!isAdmin) return <AdminOnly />;
  const nameOk = NAME.test(f.name);
  const pidsOk = f.pids === "" || /^\d+$/.test(f.pids);
  const sourceOk =
    (kind === "builtin" && !!f.builtin) || (kind === "command" && f.command.startsWith("/")) ||
    (kind === "npm" && !!f.npm) || (kind === "pypi" && !!f.pypi) || (kind === "url" && /^https?:\/\//.test(f.url));
  const valid = nameOk && sourceOk && !envBad && pidsOk;
  return (
    <>
      <PageHead title={t("serverNew.title")} subtitle={t("serverNew.subtitle")} />
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) create.mutate();
        }}
      >
        <Field label={t("servers.name")} hint={t("serverNew.nameHint")} value={f.name} onChange={set("name")} required invalid={f.name !== "" && !nameOk} />
        <div className="tabs" role="tablist" aria-label={t("serverNew.kind")} onKeyDown={onTabKeys}>
          {KINDS.map((k) => (
            <button key={k} type="button" role="tab" id={`kind-${k}`} aria-selected={kind === k} tabIndex={kind === k ? 0 : -1} aria-controls="kind-panel" onClick={() => setKind(k)}>
              {t(`serverNew.kinds.${k}`)}
            </button>
          ))}
        </div>
        <div role="tabpanel" id="kind-panel" aria-labelledby={`kind-${kind}`}>
          <p className="muted small">{t(`serverNew.kindHelp.${kind}`)}</p>
          {kind === "builtin" && <Field label={t("serverNew.builtin")} value={f.builtin} onChange={set("builtin")} required />}
          {kind === "command" && <Field label={t("serverNew.command")} hint={t("serverNew.commandHint")} value={f.command} onChange={set("command")} placeholder="/usr/local/bin/my-mcp-server" required mono />}
          {kind === "npm" && <Field label={t("serverNew.npm")} hint={t("serverNew.npmHint")} value={f.npm} onChange={set("npm")} placeholder="@modelcontextprotocol/server-filesystem@2025.1.14" required mono />}
          {kind === "pypi" && <Field label={t("serverNew.pypi")} hint={t("serverNew.pypiHint")} value={f.pypi} onChange={set("pypi")} placeholder="mcp-server-fetch==2025.1.17" required mono />}
          {kind === "url" && <Field label={t("serverNew.url")} hint={t("serverNew.urlHint")} value={f.url} onChange={set("url")} placeholder="https://mcp.example.com/mcp" required mono />}
          {(kind === "npm" || kind === "pypi") && (
            <div className="form-row">
              <Field label={t("serverNew.bin")} hint={t("serverNew.binHint")} value={f.bin} onChange={set("bin")} />
              <Field label={t("serverNew.runtime")} hint={t("serverNew.runtimeHint")} value={f.runtime} onChange={set("runtime")} />
            </div>
          )}
          {(kind === "command" || kind === "npm" || kind === "pypi") && (
            <Field label={t("serverNew.args")} hint={t("serverNew.onePerLine")} value={f.args} onChange={set("args")} multiline />
          )}
        </div>
        <fieldset>
          <legend>{t("serverNew.sandbox")}</legend>
          <Field label={t("serverNew.env")} hint={envBad ? t("serverNew.envBad", { line: envBad }) : t("serverNew.envHint")} value={f.env} onChange={set("env")} multiline placeholder="LOG_LEVEL=info" />
          <Field label={t("serverNew.mounts")} hint={t("serverNew.mountsHint")} value={f.mounts} onChange={set("mounts")} multiline placeholder="/srv/data:/data:rw" />
          <Field label={t("servers.egress")} hint={t("serverNew.egressHint")} value={f.egress} onChange={set("egress")} multiline placeholder={"api.github.com\n*.example.com:443"} />
          <div className="form-row">
            <Field label={t("serverNew.memory")} hint={t("serverNew.memoryHint")} value={f.memory} onChange={set("memory")} placeholder="512m" />
            <Field label={t("serverNew.pids")} hint={t("serverNew.pidsHint")} value={f.pids} onChange={set("pids")} invalid={!pidsOk} placeholder="64" />
            <Field label={t("serverNew.stateSize")} hint={t("serverNew.stateSizeHint")} value={f.state_size} onChange={set("state_size")} placeholder="256m" />
          </div>
          <label className="checkbox">
            <input type="checkbox" checked={perSession} onChange={(e) => setPerSession(e.target.checked)} />
            {t("serverNew.perSession")}
          </label>
          <label className="checkbox">
            <input type="checkbox" checked={usePrefix} onChange={(e) => setUsePrefix(e.target.checked)} />
            {t("serverNew.customPrefix")}
          </label>
          {usePrefix && <Field label={t("serverNew.prefix")} hint={t("serverNew.prefixHint")} value={f.prefix} onChange={set("prefix")} />}
        </fieldset>
        <ErrorNote error={create.error} title={t("serverNew.refused")} />
        <div className="row">
          <button type="submit" className="primary" disabled={!valid || create.isPending}>
            {create.isPending ? t("serverNew.adding") : t("servers.add")}
          </button>
          {create.isPending && (
            <span role="status" className="muted">
              {t("serverNew.elapsed", { n: elapsed })}
            </span>
          )}
        </div>
      </form>
    </>
  );
}
