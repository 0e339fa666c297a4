#!/usr/bin/env bash
# Container start: `berth run --rm IMG true`, median of 20 (default bridge
# network and --network none), beside `runc run` of an equivalent busybox
# bundle and, when a Docker daemon answers (DOCKER_HOST), `docker run --rm`
# of the same rootfs (issue 4). Then the memory of idle shims: one, and 100
# idle containers at once. berth runs in a network namespace of its own so
# its bridge and NAT rules never touch the host.
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
ns=berth-bench-$$
ip netns add "$ns"; ip -n "$ns" link set lo up
trap '"$berth" rm -f $("$berth" ps -aq) >/dev/null 2>&1 || true; ip netns del "$ns"; rm -rf "$work"' EXIT
berth_ns() { nsenter --net="/run/netns/$ns" -- "$berth" "$@"; }
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

printf 'berth run --rm (bridge):        '; time20 berth_ns run --rm bench/busybox true | median
printf 'berth run --rm --network none: '; time20 berth_ns run --rm --network none bench/busybox true | median
printf 'runc run:                       '; time20 runc_once | median
if command -v docker >/dev/null && docker version >/dev/null 2>&1; then
  docker import "$work/busybox.tar" bench/busybox:1 >/dev/null
  printf 'docker run --rm (bridge):       '; time20 docker run --rm bench/busybox:1 true | median
  printf 'docker run --rm --network none: '; time20 docker run --rm --network none bench/busybox:1 true | median
else
  echo "docker run --rm:  (no Docker daemon answering; set DOCKER_HOST)"
fi

# Idle shims: RSS (and its private, anonymous part) of one, then 100 at once.
shim_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shim_pid"])' "$BERTH_ROOT/containers/$1/state.json"; }
rss() { awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Anonymous:/ {a=$2} END {print r, p, a}' "/proc/$1/smaps_rollup"; }
id=$(berth_ns run -d bench/busybox sleep 3600)
sleep 1
read -r r p a < <(rss "$(shim_of "$id")")
echo "idle shim: RSS $r KiB (the berth binary's pages, shared by all shims, and $a KiB anonymous)"
berth_ns rm -f "$id" >/dev/null
s=$(date +%s%N)
for i in $(seq 1 100); do berth_ns run -d bench/busybox sleep 3600 >/dev/null; done
e=$(date +%s%N)
total=0; pss=0; anon=0
for id in $("$berth" ps -q --no-trunc); do read -r r p a < <(rss "$(shim_of "$id")"); total=$((total + r)); pss=$((pss + p)); anon=$((anon + a)); done
echo "100 idle containers: started in $(( (e - s) / 1000000 )) ms; shims: RSS sum $((total / 1024)) MiB, PSS sum $((pss / 1024)) MiB (anonymous $((anon / 1024)) MiB); running: $("$berth" ps -q | wc -l)"
free -m | awk '/^Mem:/ {print "host memory used: " $3 " MiB"}'
