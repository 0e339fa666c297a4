#!/usr/bin/env bash
# Frontend speed: Dockerfile parse/expand/lint and .dockerignore matching.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
cargo bench --quiet -p berth-dockerfile --bench frontend
cargo bench --quiet -p berth-dockerignore --bench matcher 2>/dev/null || echo "(berth-dockerignore bench not present)"
