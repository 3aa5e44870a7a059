// Every locale must have exactly en's leaf keys, each with the same {{placeholders}}.
// Zero dependencies; exits 1 naming the first offending keys.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL("../src/locales/", import.meta.url));
const load = (f) => JSON.parse(readFileSync(dir + f, "utf8"));

function leaves(obj, prefix = "", out = new Map()) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object") leaves(v, key, out);
    else out.set(key, String(v));
  }
  return out;
}
const placeholders = (s) => [...s.matchAll(/\{\{\s*([\w.-]+)[^}]*\}\}/g)].map((m) => m[1]).sort().join(",");

const en = leaves(load("en.json"));
const problems = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json") && f !== "en.json")) {
  const other = leaves(load(file));
  for (const [key, value] of en) {
    if (!other.has(key)) problems.push(`${file}: missing key ${key}`);
    else if (placeholders(other.get(key)) !== placeholders(value))
      problems.push(`${file}: key ${key} has placeholders {${placeholders(other.get(key))}}, en has {${placeholders(value)}}`);
    else if (other.get(key).trim() === "") problems.push(`${file}: key ${key} is empty`);
  }
  for (const key of other.keys()) if (!en.has(key)) problems.push(`${file}: extra key ${key} (not in en.json)`);
}
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`check:i18n: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`check:i18n: ${en.size} keys, all locales match`);
