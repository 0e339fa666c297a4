#!/usr/bin/env bash
# Layer apply and diff of a ~200 MB tree of mixed files, compressed and not,
# beside GNU tar + gzip doing the same work in the same run (issue 3).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
apt_install tar gzip
cargo bench --quiet -p berth-fs --bench layer
