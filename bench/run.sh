#!/usr/bin/env bash
# Container start: `berth run --rm IMG true`, median of 20, beside `runc run`
# of an equivalent busybox bundle and, when a Docker daemon answers
# (DOCKER_HOST), `docker run --rm` of the same rootfs (issue 4).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
apt_install busybox-static runc libseccomp-dev
cargo build --quiet --release --bin berth
berth=$PWD/target/release/berth
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
GEN=$work bash ../shared/bench/base/make-busybox.sh "$work/busybox.tar" 2>/dev/null
export BERTH_ROOT=$work/store
"$berth" import "$work/busybox.tar" bench/busybox >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d)\n", a[int((NR+1)/2)], a[1], a[NR]}'; }
time20() { for i in $(seq 1 20); do s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); done; }

mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/busybox.tar"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))
PY
n=0
runc_once() { n=$((n + 1)); runc --root "$work/runc" run --bundle "$work/bundle" "bench$n$RANDOM"; }

printf 'berth run --rm:   '; time20 "$berth" run --rm bench/busybox true | median
printf 'runc run:         '; time20 runc_once | median
if command -v docker >/dev/null && docker version >/dev/null 2>&1; then
  docker import "$work/busybox.tar" bench/busybox:1 >/dev/null
  printf 'docker run --rm:  '; time20 docker run --rm --network none bench/busybox:1 true | median
else
  echo "docker run --rm:  (no Docker daemon answering; set DOCKER_HOST)"
fi
