/** Theme: "system" follows prefers-color-scheme (pure CSS); "light"/"dark" are stored and set on <html>. */
export type ThemeChoice = "system" | "light" | "dark";
const KEY = "gigmcp.theme";

export function storedTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    if (v === "light" || v === "dark") return v;
  } catch {
    /* storage may be disabled */
  }
  return "system";
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", choice);
}

export function setTheme(choice: ThemeChoice): void {
  try {
    if (choice === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    /* ignore */
  }
  applyTheme(choice);
  window.dispatchEvent(new Event("gigmcp-theme"));
}

/** The theme actually shown now (for the toggle's label). */
export function effectiveTheme(): "light" | "dark" {
  const c = storedTheme();
  if (c !== "system") return c;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}
