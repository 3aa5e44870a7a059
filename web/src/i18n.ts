import i18n from "i18next";
import { initReactI18next } from "react-i18next";
import en from "./locales/en.json";

// English is bundled (it is also the fallback); the other catalogs are separate chunks loaded on demand.
const catalogs = import.meta.glob<{ default: Record<string, unknown> }>(["./locales/*.json", "!./locales/en.json"]);

export const LANGUAGES = [
  { code: "en", label: "English" },
  { code: "de", label: "Deutsch" },
  { code: "fr", label: "Français" },
  { code: "es", label: "Español" },
  { code: "it", label: "Italiano" },
] as const;
export type Lang = (typeof LANGUAGES)[number]["code"];
const KEY = "gigmcp.lang";

function initialLanguage(): Lang {
  const known = LANGUAGES.map((l) => l.code) as string[];
  try {
    const stored = localStorage.getItem(KEY);
    if (stored && known.includes(stored)) return stored as Lang;
  } catch {
    /* ignore */
  }
  for (const l of navigator.languages ?? []) {
    const base = l.slice(0, 2).toLowerCase();
    if (known.includes(base)) return base as Lang;
  }
  return "en";
}

async function loadCatalog(lang: string): Promise<void> {
  if (lang === "en" || i18n.hasResourceBundle(lang, "translation")) return;
  const load = catalogs[`./locales/${lang}.json`];
  if (load) i18n.addResourceBundle(lang, "translation", (await load()).default);
}

export async function setLanguage(lang: Lang): Promise<void> {
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    /* ignore */
  }
  await loadCatalog(lang);
  await i18n.changeLanguage(lang);
}

i18n.on("languageChanged", (lng) => {
  document.documentElement.lang = lng;
});

/** Initialises i18next with the stored or browser language; resolves once its catalog is loaded. */
export async function initI18n(): Promise<void> {
  const lng = initialLanguage();
  await i18n.use(initReactI18next).init({
    resources: { en: { translation: en } },
    lng: "en",
    fallbackLng: "en",
    // React escapes text itself; server strings are never parsed as HTML.
    interpolation: { escapeValue: false },
    returnNull: false,
  });
  try {
    await loadCatalog(lng);
    await i18n.changeLanguage(lng);
  } catch {
    /* stay in English when a catalog cannot be loaded */
  }
  document.documentElement.lang = i18n.language;
}

export default i18n;
