import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { initI18n } from "./i18n";
import { applyTheme, storedTheme } from "./theme";

// An explicit theme choice is applied before the first render: there is no inline
// pre-paint script in index.html (the CSP forbids it).
applyTheme(storedTheme());

await initI18n();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
