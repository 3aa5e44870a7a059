import { Validator, type OutputUnit, type Schema, type SchemaDraft } from "@cfworker/json-schema";

/** One problem of a configuration: where (a JSON pointer into the config) and what. */
export type ConfigProblem = { path: string; message: string; keyword: string; keywordLocation: string };

const cache = new WeakMap<object, Validator>();

function draftOf(schema: Schema): SchemaDraft {
  const s = typeof schema.$schema === "string" ? schema.$schema : "";
  if (s.includes("draft-04")) return "4";
  if (s.includes("draft-07") || s.includes("draft-06")) return "7";
  if (s.includes("2019-09")) return "2019-09";
  return "2020-12";
}

/** A validator for a schema (cached per schema object). @cfworker/json-schema never uses eval: CSP-safe. */
export function validatorFor(schema: unknown): Validator | null {
  if (schema === true || schema === undefined || schema === null) return null;
  if (schema === false) return new Validator(false);
  if (typeof schema !== "object") return null;
  let v = cache.get(schema);
  if (!v) {
    v = new Validator(schema as Schema, draftOf(schema as Schema), false);
    cache.set(schema, v);
  }
  return v;
}

/** Keeps the most specific errors: drops an error whose keyword location contains another error's. */
function leaves(errors: OutputUnit[]): OutputUnit[] {
  return errors.filter(
    (e) => !errors.some((o) => o !== e && o.keywordLocation.startsWith(e.keywordLocation + "/")),
  );
}

export function validateConfig(schema: unknown, data: unknown): ConfigProblem[] {
  const v = validatorFor(schema);
  if (!v) return [];
  const r = v.validate(data);
  if (r.valid) return [];
  return leaves(r.errors).map((e) => ({
    path: e.instanceLocation.replace(/^#/, "") || "/",
    message: e.error,
    keyword: e.keyword,
    keywordLocation: e.keywordLocation,
  }));
}
