import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The gateway serves dist/ from its own origin under a strict CSP
// (script-src 'self'; style-src 'self'): no inline script or style may be emitted.
export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // Inlining small assets as data: URLs is fine for images but never for scripts/styles.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:18181",
      "/auth": "http://127.0.0.1:18181",
    },
  },
});
