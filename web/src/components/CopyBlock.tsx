import { useId, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { IconCheck, IconCopy } from "./icons";

/**
 * Read-only text with a copy button. navigator.clipboard only exists in a secure context
 * (https or localhost); otherwise the text is selected so the user can press Ctrl+C.
 */
export function CopyBlock({ label, value, rows }: { label: string; value: string; rows?: number }) {
  const { t } = useTranslation();
  const id = useId();
  const ref = useRef<HTMLTextAreaElement>(null);
  const [state, setState] = useState<"idle" | "copied" | "manual">("idle");
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(value);
      setState("copied");
    } catch {
      ref.current?.focus();
      ref.current?.select();
      setState("manual");
    }
  };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <textarea
          id={id}
          ref={ref}
          readOnly
          value={value}
          rows={rows ?? Math.min(12, value.split("\n").length)}
          spellCheck={false}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" onClick={copy} aria-label={t("common.copyNamed", { name: label })}>
          {state === "copied" ? <IconCheck /> : <IconCopy />}
          {state === "copied" ? t("common.copied") : t("common.copy")}
        </button>
      </div>
      <span className="hint" aria-live="polite">
        {state === "manual" ? t("common.copyManual") : ""}
      </span>
    </div>
  );
}
