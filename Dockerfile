# Gig'MCP: the gateway, its dashboard and its default plugins in one image.
#
#   docker build -t gigmcp .          (or `docker compose build`: docker-compose.yml)
#
# Three stages: the dashboard (Node), the release binary with the dashboard and the default plugins embedded
# (Rust), and a small runtime with what sandboxes need (bubblewrap, nftables, iproute2, e2fsprogs for state
# filesystems) and what npm and PyPI servers run on (Node, Python). Kept at Dockerfile 1.2 syntax (no
# `# syntax=` line, no heredocs) so that every BuildKit and the legacy builder read it.

# ---- the dashboard
FROM node:22-bookworm AS web
WORKDIR /src/web
# The dependencies first: a change to the dashboard's sources does not fetch them again.
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- the gateway
FROM rust:1.95-bookworm AS build
# The default plugins are WebAssembly components, built by the gateway's build script.
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY wit wit
COPY sdk sdk
COPY plugins plugins
COPY host host
COPY bench bench
COPY --from=web /src/web/dist web/dist
# Crates and build outputs in caches (BuildKit): a source change recompiles what changed and fetches nothing.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gigmcp \
    && cp target/release/gigmcp /usr/local/bin/gigmcp

# ---- the runtime
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       bubblewrap nftables iproute2 e2fsprogs ca-certificates tini python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# Node for npm servers: the build stage's (Debian's bookworm has Node 18, older than many servers want).
COPY --from=web /usr/local/bin/node /usr/local/bin/node
COPY --from=web /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
COPY --from=build /usr/local/bin/gigmcp /usr/local/bin/gigmcp
# The data directory (database, vault, servers, states) is the volume; `docker compose exec gateway gigmcp …`
# finds it (and GIG_MASTER_KEY_FILE, set by the compose file) through the same environment.
ENV GIG_DATA_DIR=/data \
    GIG_LISTEN=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
# tini is PID 1: it reaps orphaned processes (a sandbox's children the gateway no longer waits for) and
# passes SIGTERM on, so `docker stop` stops the gateway at once.
ENTRYPOINT ["/usr/bin/tini", "--", "gigmcp"]
CMD ["serve"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["gigmcp", "health"]
