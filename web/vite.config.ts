import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

/**
 * A gzip copy (`<file>.gz`) of every text file of the build worth compressing, made once here: the gateway
 * serves it to clients that take gzip and never compresses per request.
 */
function precompress(): Plugin {
  return {
    name: "gigmcp-precompress",
    apply: "build",
    writeBundle(options, bundle) {
      const dir = options.dir ?? "dist";
      for (const name of [...Object.keys(bundle), "index.html"]) {
        if (!/\.(js|css|html|json|svg|txt)$/.test(name)) continue;
        const path = join(dir, name);
        let raw: Buffer;
        try {
          raw = readFileSync(path);
        } catch {
          continue;
        }
        if (raw.length < 1024) continue;
        const gz = gzipSync(raw, { level: 9 });
        if (gz.length < raw.length * 0.9) writeFileSync(path + ".gz", gz);
      }
    },
  };
}

// The gateway serves dist/ from its own origin under a strict CSP
// (script-src 'self'; style-src 'self'): no inline script or style may be emitted.
export default defineConfig({
  base: "/",
  plugins: [react(), precompress()],
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
