# syntax=docker/dockerfile:1
#
# One image holding both binaries: /usr/local/bin/credentials-api and /usr/local/bin/kms.
#
# Why one image rather than one per binary:
# - the API and the kms speak kms.v1 to each other, so they ship from the same commit and have
#   one tag to pin, scan and sign;
# - the Kubernetes manifests need the kms binary and coreutils' `install` in the same image: an
#   init container copies the keyring from its Secret volume into a memory-backed emptyDir with
#   mode 0600 before the kms starts (see deploy/README.md, "The keyring"). An operator also uses
#   `kubectl exec ... -c kms -- sh -c '... kill -HUP 1'` to reload a rotated keyring in place.
#   That is why the runtime base is debian:bookworm-slim and not distroless: the binaries need
#   nothing else, and all the hardening (non-root, read-only root filesystem, no capabilities,
#   seccomp) is applied by the pod spec.
#
# Build (needs BuildKit, the default builder since Docker 23, for the cache mounts):
#   docker build -t credentials-vault:dev .
# Run: every manifest sets `command:` to one of the two binaries; the default is the API.

ARG RUST_VERSION=1.95

# ---- build: both binaries, release profile (Cargo.toml: thin LTO, line tables kept) ----
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the target directory between builds, so a source
# change recompiles the workspace crates only, not every dependency. The binaries are copied out
# of the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin credentials-api --bin kms \
 && install -D -m 0755 -t /out target/release/credentials-api target/release/kms

# ---- runtime: Debian 12 slim (the same glibc as the builder), non-root ----
FROM debian:bookworm-slim AS runtime
# ca-certificates: the system trust store, for outbound TLS that uses it (credential
# validation; the probes also carry webpki-roots).
# The user exists so that tools printing user names work; the manifests use the numeric ids.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vault \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin vault
COPY --from=build /out/ /usr/local/bin/
# Nothing is written to the image's filesystem at run time: the kms socket lives in /run/kms and
# the keyring copy in /etc/kms, both emptyDir volumes in Kubernetes. Run with a read-only root.
USER 10001:10001
# 50051 API gRPC, 9090 API metrics, 8443 kms mTLS (central mode), 8081 kms health, 9091 kms metrics.
EXPOSE 50051 9090 8443 8081 9091
LABEL org.opencontainers.image.title="credentials-vault" \
      org.opencontainers.image.description="credentials-api and kms of the credentials vault" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["/usr/local/bin/credentials-api", "serve"]
