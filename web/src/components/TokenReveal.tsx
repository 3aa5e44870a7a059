import { useState } from "react";
import { useTranslation } from "react-i18next";
import { onTabKeys } from "./common";
import { CopyBlock } from "./CopyBlock";
import { Dialog } from "./Dialog";

export type Reveal = { name: string; endpoint: string; token: string };

/** The profile's endpoint as an absolute URL (the API may give a path). */
export function absoluteEndpoint(endpoint: string): string {
  try {
    return new URL(endpoint, window.location.origin).toString();
  } catch {
    return endpoint;
  }
}

/** Client configuration snippets, each with the token filled in. */
export function clientSnippets(name: string, endpoint: string, token: string) {
  const url = absoluteEndpoint(endpoint);
  const auth = `Bearer ${token}`;
  const key = name.replace(/[^A-Za-z0-9_-]/g, "-") || "gigmcp";
  return {
    claude: `claude mcp add --transport http ${key} ${url} --header "Authorization: ${auth}"`,
    cursor: JSON.stringify({ mcpServers: { [key]: { url, headers: { Authorization: auth } } } }, null, 2),
    vscode: JSON.stringify({ servers: { [key]: { type: "http", url, headers: { Authorization: auth } } } }, null, 2),
    json: JSON.stringify({ name: key, transport: "streamable-http", url, headers: { Authorization: auth } }, null, 2),
  };
}

const TABS = ["claude", "cursor", "vscode", "json"] as const;

/**
 * Shows a new profile token once. The token lives only in the state of the component that
 * opened this dialog; there is no × and Escape does nothing: "Done" is the only way out.
 */
export function TokenReveal({ reveal, onDone }: { reveal: Reveal | null; onDone: () => void }) {
  const { t } = useTranslation();
  const [tab, setTab] = useState<(typeof TABS)[number]>("claude");
  const snippets = reveal ? clientSnippets(reveal.name, reveal.endpoint, reveal.token) : null;
  const hints: Record<(typeof TABS)[number], string> = {
    claude: t("token.hintClaude"),
    cursor: t("token.hintCursor"),
    vscode: t("token.hintVscode"),
    json: t("token.hintJson"),
  };
  return (
    <Dialog
      open={!!reveal}
      onClose={onDone}
      dismissable={false}
      className="wide"
      title={t("token.title")}
      testId="token-dialog"
      actions={
        <button type="button" className="primary" onClick={onDone}>
          {t("common.done")}
        </button>
      }
    >
      {reveal && snippets && (
        <>
          <div className="alert warn">{t("token.once")}</div>
          <CopyBlock label={t("token.token")} value={reveal.token} rows={2} />
          <CopyBlock label={t("token.endpoint")} value={absoluteEndpoint(reveal.endpoint)} rows={1} />
          <h3>{t("token.connect")}</h3>
          <div className="tabs" role="tablist" aria-label={t("token.connect")} onKeyDown={onTabKeys}>
            {TABS.map((k) => (
              <button
                key={k}
                type="button"
                role="tab"
                id={`tab-${k}`}
                aria-selected={tab === k}
                tabIndex={tab === k ? 0 : -1}
                aria-controls={`panel-${k}`}
                onClick={() => setTab(k)}
              >
                {t(`token.tab.${k}`)}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
            <p className="muted small">{hints[tab]}</p>
            <CopyBlock label={t(`token.tab.${tab}`)} value={snippets[tab]} />
          </div>
        </>
      )}
    </Dialog>
  );
}
