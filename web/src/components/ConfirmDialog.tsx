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

/**
 * Deleting an object that may own servers' state directories (a profile, a server): typed confirmation, and a
 * box that confirms deleting the state too (the API refuses with 409 otherwise).
 */
export function DeleteWithStateDialog(props: {
  open: boolean;
  title: string;
  text: string;
  name: string;
  confirmLabel: string;
  deleteState: boolean;
  onDeleteState: (on: boolean) => void;
  mutation: { isPending: boolean; error: unknown; mutate: () => void; reset: () => void };
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const { mutation } = props;
  return (
    <ConfirmDialog
      open={props.open}
      title={props.title}
      body={
        <>
          <p>{props.text}</p>
          <label className="checkbox">
            <input type="checkbox" checked={props.deleteState} onChange={(e) => props.onDeleteState(e.target.checked)} />
            {t("profile.deleteStateToo")}
          </label>
        </>
      }
      typeToConfirm={props.name}
      confirmLabel={props.confirmLabel}
      busy={mutation.isPending}
      error={mutation.error}
      onConfirm={() => mutation.mutate()}
      onClose={() => {
        props.onClose();
        mutation.reset();
      }}
    />
  );
}
