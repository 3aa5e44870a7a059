import { useEffect, useRef, type ReactNode } from "react";

/**
 * A native <dialog> opened with showModal() (focus trap, Escape, inert background for free).
 * `dismissable=false` ignores Escape: the dialog closes only through its own buttons.
 */
export function Dialog(props: {
  open: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  actions?: ReactNode;
  dismissable?: boolean;
  className?: string;
  testId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const { open, dismissable = true } = props;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const titleId = useRef("dlg-" + Math.random().toString(36).slice(2)).current;
  return (
    <dialog
      ref={ref}
      className={props.className}
      aria-labelledby={titleId}
      data-testid={props.testId}
      onCancel={(e) => {
        e.preventDefault();
        if (dismissable) props.onClose();
      }}
    >
      {open && (
        <>
          <div className="dialog-body">
            <h2 id={titleId}>{props.title}</h2>
            {props.children}
          </div>
          {props.actions && <div className="dialog-actions">{props.actions}</div>}
        </>
      )}
    </dialog>
  );
}
