import { useTranslation } from "react-i18next";
import { lineDiff } from "./diff";

export function DiffView({ before, after, label }: { before: string; after: string; label: string }) {
  const { t } = useTranslation();
  const lines = lineDiff(before, after);
  const changed = lines.some((l) => l.op !== " ");
  if (!changed) return <p className="muted small">{t("plugin.noChanges")}</p>;
  return (
    <div className="diff" role="region" aria-label={label} tabIndex={0}>
      {lines.map((l, i) => (
        <div key={i} className={l.op === "+" ? "add" : l.op === "-" ? "del" : undefined}>
          <span aria-hidden="true">{l.op} </span>
          {l.op === "+" && <span className="visually-hidden">{t("plugin.added")} </span>}
          {l.op === "-" && <span className="visually-hidden">{t("plugin.removed")} </span>}
          {l.text}
        </div>
      ))}
    </div>
  );
}
