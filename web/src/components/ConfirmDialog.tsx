import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { Dialog } from "./Dialog";
import { ErrorNote } from "./common";

/** A destructive action's confirmation; with `typeToConfirm` the user must type that word first. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  body: React.ReactNode;
  confirmLabel: string;
  typeToConfirm?: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const [typed, setTyped] = useState("");
  const id = useId();
  const ok = !props.typeToConfirm || typed === props.typeToConfirm;
  const close = () => {
    setTyped("");
    props.onClose();
  };
  return (
    <Dialog
      open={props.open}
      onClose={close}
      title={props.title}
      actions={
        <>
          <button type="button" onClick={close}>
            {t("common.cancel")}
          </button>
          <button type="button" className="danger" disabled={!ok || props.busy} onClick={props.onConfirm}>
            {props.confirmLabel}
          </button>
        </>
      }
    >
      <div className="stack">
        <div>{props.body}</div>
        {props.typeToConfirm && (
          <div className="field">
            <label htmlFor={id}>{t("common.typeToConfirm", { word: props.typeToConfirm })}</label>
            <input id={id} type="text" value={typed} autoComplete="off" onChange={(e) => setTyped(e.target.value)} />
          </div>
        )}
        <ErrorNote error={props.error} />
      </div>
    </Dialog>
  );
}
