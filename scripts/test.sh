#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, conformance and CLI tests.
# Installs what it needs by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo

if [ -z "${BERTH_CONFORMANCE_DIR:-}" ] && [ ! -d ../shared/conformance ]; then
    echo "conformance data not found: expected ../shared/conformance or BERTH_CONFORMANCE_DIR" >&2
    exit 1
fi

# Real peers the tests drive: a Docker daemon (started privately by the
# tests), skopeo and umoci to read what berth writes, GNU tar, and
# busybox-static for tiny base images; nftables, iproute2 and util-linux
# (unshare, nsenter) for the networking tests.
apt_install busybox-static docker.io skopeo umoci tar libseccomp-dev nftables iproute2 util-linux curl mmdebstrap tini runc git python3 bzip2 xz-utils openssl

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace
