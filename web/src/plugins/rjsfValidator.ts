import {
  createErrorHandler,
  mergeObjects,
  toErrorList,
  toErrorSchema,
  unwrapErrorHandler,
  type CustomValidator,
  type ErrorSchema,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type UiSchema,
  type ValidationData,
  type ValidatorType,
} from "@rjsf/utils";
import { validateConfig } from "./validate";

/** JSON pointer (/a/0/b) to RJSF's property path (.a.0.b, or ['x.y'] for odd keys). */
function pointerToProperty(pointer: string): string {
  if (!pointer || pointer === "/") return "";
  return pointer
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^[A-Za-z0-9_$]+$/.test(s) ? "." + s : `['${s.replace(/'/g, "\\'")}']`))
    .join("");
}

function withRoot(schema: RJSFSchema, root: RJSFSchema | undefined): RJSFSchema {
  if (!root || root === schema) return schema;
  return { ...schema, definitions: root.definitions, $defs: (root as { $defs?: unknown }).$defs } as RJSFSchema;
}

function errorsFor(schema: RJSFSchema, data: unknown): RJSFValidationError[] {
  return validateConfig(schema, data ?? null).map((p) => {
    const property = pointerToProperty(p.path);
    return { name: p.keyword, property, message: p.message, schemaPath: p.keywordLocation, stack: `${property || "."} ${p.message}` };
  });
}

/**
 * RJSF's validator interface over @cfworker/json-schema, which compiles nothing at run time
 * (@rjsf/validator-ajv8 uses `new Function`, refused by the gateway's CSP).
 */
export const cfworkerValidator: ValidatorType = {
  validateFormData(formData: unknown, schema: RJSFSchema, customValidate?: CustomValidator, transformErrors?: ErrorTransformer, uiSchema?: UiSchema): ValidationData<unknown> {
    let errors = errorsFor(schema, formData);
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    let errorSchema: ErrorSchema = toErrorSchema(errors);
    if (customValidate) {
      const handler = customValidate(formData, createErrorHandler(formData), uiSchema, errorSchema);
      errorSchema = mergeObjects(errorSchema, unwrapErrorHandler(handler), true) as ErrorSchema;
      errors = toErrorList(errorSchema);
    }
    return { errors, errorSchema };
  },
  isValid(schema: RJSFSchema, formData: unknown, rootSchema: RJSFSchema): boolean {
    try {
      return validateConfig(withRoot(schema, rootSchema), formData ?? null).length === 0;
    } catch {
      return false;
    }
  },
  rawValidation<Result = unknown>(schema: RJSFSchema, formData?: unknown) {
    try {
      return { errors: validateConfig(schema, formData ?? null) as unknown as Result[] };
    } catch (e) {
      return { validationError: e as Error };
    }
  },
};
