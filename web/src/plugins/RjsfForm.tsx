// Not "@rjsf/core": its index also re-exports a test registry importing @rjsf/validator-ajv8 (eval-based, unwanted).
import Form from "@rjsf/core/lib/components/Form.js";
import { englishStringTranslator, replaceStringParameters, TranslatableString } from "@rjsf/utils";
import type { IconButtonProps, RJSFSchema, UiSchema } from "@rjsf/utils";
import { useTranslation } from "react-i18next";
import i18n from "../i18n";
import { cfworkerValidator } from "./rjsfValidator";

// Text buttons: the default theme's glyphicon buttons are empty without Bootstrap's CSS.
function makeButton(key: string) {
  return function TextButton(props: IconButtonProps) {
    const { t } = useTranslation();
    const { icon: _i, iconType: _it, uiSchema: _u, registry: _r, className: _c, ...rest } = props;
    return (
      <button type="button" className="small" {...rest}>
        {t(key)}
      </button>
    );
  };
}
const templates = {
  ButtonTemplates: {
    AddButton: makeButton("form.add"),
    RemoveButton: makeButton("form.remove"),
    MoveUpButton: makeButton("form.up"),
    MoveDownButton: makeButton("form.down"),
    CopyButton: makeButton("form.copy"),
  },
};
const uiSchema: UiSchema = { "ui:submitButtonOptions": { norender: true } };

/** The form's own words in the dashboard's language (`form.rjsf.*`; `%1` stands for a parameter). */
const TRANSLATED: Partial<Record<TranslatableString, string>> = {
  [TranslatableString.ArrayItemTitle]: "item",
  [TranslatableString.EmptyArray]: "emptyArray",
  [TranslatableString.YesLabel]: "yes",
  [TranslatableString.NoLabel]: "no",
  [TranslatableString.NewStringDefault]: "newValue",
  [TranslatableString.KeyLabel]: "key",
  [TranslatableString.Type]: "type",
  [TranslatableString.Value]: "value",
  [TranslatableString.OptionPrefix]: "option",
  [TranslatableString.OptionalObjectAdd]: "optionalAdd",
  [TranslatableString.OptionalObjectRemove]: "optionalRemove",
  [TranslatableString.OptionalObjectEmptyMsg]: "optionalEmpty",
  [TranslatableString.UnknownFieldType]: "unknownType",
};

function translateString(text: TranslatableString, params?: string[]): string {
  const key = TRANSLATED[text];
  if (!key) return englishStringTranslator(text, params);
  return replaceStringParameters(i18n.t(`form.rjsf.${key}`), params);
}

/** A form generated from the plugin's config schema; edits flow back as the new configuration value. */
export default function RjsfForm({ schema, value, onChange }: { schema: unknown; value: unknown; onChange: (v: unknown) => void }) {
  return (
    <div className="rjsf">
      <Form
        schema={(schema && typeof schema === "object" ? schema : {}) as RJSFSchema}
        uiSchema={uiSchema}
        formData={value}
        validator={cfworkerValidator}
        templates={templates}
        translateString={translateString}
        liveValidate="onChange"
        showErrorList={false}
        noHtml5Validate
        onChange={(e) => onChange(e.formData)}
      />
    </div>
  );
}
