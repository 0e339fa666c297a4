#!/usr/bin/env bash
# berth's main job on a real example. Today: lint and dump the clinic
# example's Dockerfile (building and running it arrives with `berth build`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
cargo build --quiet --bin berth
berth=target/debug/berth
dockerfile=examples/clinic/Dockerfile

echo "== berth dockerfile lint $dockerfile"
"$berth" dockerfile lint "$dockerfile"
echo "== berth dockerfile dump $dockerfile"
"$berth" dockerfile dump "$dockerfile"
