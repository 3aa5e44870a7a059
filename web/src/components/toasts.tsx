import { useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { IconX } from "./icons";

export type ToastKind = "info" | "ok" | "error";
type Toast = { id: number; kind: ToastKind; text: string };

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

/** Shows a short message in the toast region. Never pass a secret here. */
export function toast(text: string, kind: ToastKind = "info"): void {
  const id = nextId++;
  toasts = [...toasts.slice(-3), { id, kind, text }];
  emit();
  window.setTimeout(() => dismiss(id), kind === "error" ? 8000 : 4000);
}
function dismiss(id: number) {
  toasts = toasts.filter((t) => t.id !== id);
  emit();
}

export function Toasts() {
  const { t } = useTranslation();
  const list = useSyncExternalStore(
    (l) => (listeners.add(l), () => listeners.delete(l)),
    () => toasts,
  );
  return (
    <div className="toasts" role="status" aria-live="polite" aria-label={t("common.notifications")}>
      {list.map((item) => (
        <div key={item.id} className={`toast ${item.kind}`}>
          <p>{item.text}</p>
          <button type="button" className="ghost icon small" onClick={() => dismiss(item.id)} aria-label={t("common.dismiss")}>
            <IconX />
          </button>
        </div>
      ))}
    </div>
  );
}
