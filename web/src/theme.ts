/** Theme: "light"/"dark" are stored; "system" follows prefers-color-scheme. Either way the theme shown is set
 * on <html data-theme>, which is all the CSS reads. */
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

const systemDark = () => window.matchMedia?.("(prefers-color-scheme: dark)");
let following = false;

export function applyTheme(choice: ThemeChoice): void {
  const shown = choice === "system" ? (systemDark()?.matches ? "dark" : "light") : choice;
  document.documentElement.setAttribute("data-theme", shown);
  // Without a choice of their own, users get the system's theme as it changes.
  if (!following) {
    following = true;
    systemDark()?.addEventListener("change", () => {
      if (storedTheme() === "system") {
        applyTheme("system");
        window.dispatchEvent(new Event("gigmcp-theme"));
      }
    });
  }
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
  return systemDark()?.matches ? "dark" : "light";
}
