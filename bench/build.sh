#!/usr/bin/env bash
# `berth build` on the shared cases (../shared/bench/cases) and on the
# clinic example: cold (fresh store, bases imported, untimed), no-op rebuild
# and one late-COPYed file changed, median of REPS (default 5) each, beside
# the BuildKit figures of ../shared/bench/ANCHORS.md (issue 5 goals: no-op
# ≤ 0.2×, cold and touched ≤ 0.5× BuildKit).
# Usage: bench/build.sh [CASE…]   (default: small many-steps multistage big-context)
#   CASE: a shared case (small many-steps multistage big-context django …)
#   or clinic (examples/clinic; its RUN pip-installs from the package index,
#   so it needs egress; no BuildKit anchor).
# BERTH=path/to/berth uses that binary instead of a release build.
# Needs root; RUN steps use berth's default bridge. To keep that off the
# host, run it in a network namespace entered with `nsenter --net=…`
# (`ip netns exec` remounts /sys, which hides the cgroup hierarchy from the
# runtime); clinic needs that namespace to have egress (a veth to the host
# and a masquerade rule).
# BENCH_CACHE (default /var/tmp/berth-bench) keeps what is slow to make
# between runs: the python base (mmdebstrap) and the generated contexts
# (the django case pip-downloads its wheels on the host).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
shared=$(cd ../shared/bench && pwd)
if [ -z "${BERTH:-}" ]; then
  need_cargo
  cargo build --quiet --release --bin berth
  BERTH=$PWD/target/release/berth
fi
REPS=${REPS:-5}
cache=${BENCH_CACHE:-/var/tmp/berth-bench}
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9   # runs share the generated contexts, whose late file they edit
started=$(date +%s)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export GEN=$cache/gen
GEN=$work bash "$shared/base/make-busybox.sh" "$work/busybox.tar" 2>/dev/null
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(small many-steps multistage big-context)
shared_cases=()
for c in "${cases[@]}"; do [ "$c" = clinic ] || shared_cases+=("$c"); done
[ ${#shared_cases[@]} -eq 0 ] || bash "$shared/cases/gen-all.sh" "${shared_cases[@]}"

# case_dir CASE: the directory holding ctx/, case.env (LATE=) and late.pristine.
case_dir() {
  if [ "$1" != clinic ]; then echo "$GEN/cases/$1"; return; fi
  local d=$work/cases/clinic
  if [ ! -d "$d" ]; then
    mkdir -p "$d"
    cp -a examples/clinic "$d/ctx"   # a copy: the touched runs edit it
    echo LATE=doctors/views.py > "$d/case.env"
    cp -p "$d/ctx/doctors/views.py" "$d/late.pristine"
  fi
  echo "$d"
}

# python_base: the tar of localbase/python:3.11, made once per input change.
python_base() {
  local key out
  key=$({ declare -f make_python_base; cat "$shared/base/make-python.sh" \
    /etc/ssl/certs/ca-certificates.crt; } | sha256sum | cut -c1-16)
  out=$cache/python-$key.tar
  if [ ! -f "$out" ]; then
    echo "making the python base $out (once)" >&2
    make_python_base "$out.part" >&2
    mv "$out.part.meta" "$out.meta"
    mv "$out.part" "$out"
  fi
  echo "$out"
}

# import_bases ROOT CTX: a fresh store with the base images CTX's Dockerfile uses.
import_bases() {
  "$BERTH" --root "$1" import "$work/busybox.tar" localbase/busybox:1 >/dev/null || return 1
  if grep -q '^FROM localbase/python:3.11' "$2/Dockerfile"; then
    [ -n "${pybase:-}" ] || pybase=$(python_base) || return 1
    import_python_base "$pybase" "$BERTH" --root "$1" >/dev/null || return 1
  fi
}

# timed ARRAY CMD…: runs CMD, appends its wall time (ms) to ARRAY; on failure
# shows CMD's output on stderr.
timed() {
  local -n acc=$1
  local s e
  shift
  s=$(date +%s%N)
  if ! "$@" >"$work/out" 2>&1; then
    echo "FAILED: $*" >&2
    tail -n 40 "$work/out" >&2
    return 1
  fi
  e=$(date +%s%N)
  acc+=($(((e - s) / 1000000)))
}

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'; }

# anchor CASE SCENARIO: BuildKit's median in ANCHORS.md (s), or "-".
anchor() {
  awk -F'|' -v c="$1" -v want="$2" '
    /^## / { s = "" }
    /^### Cold build/ { s = "cold" }
    /^### No-op rebuild/ { s = "noop" }
    /^### Rebuild after editing/ { s = "touched" }
    s == want { name = $2; gsub(/ /, "", name)
                if (name == c) { v = $3; gsub(/\*/, "", v); split(v, f, " "); print f[1]; found = 1; exit } }
    END { if (!found) print "-" }' "$shared/ANCHORS.md"
}

# cell CASE SCENARIO MS…: "berth / BuildKit (ratio×)".
cell() {
  local c=$1 sc=$2 mine bk
  shift 2
  mine=$(printf '%s\n' "$@" | median)
  bk=$(anchor "$c" "$sc")
  if [ "$bk" = - ]; then
    printf '%s / - (-)' "$mine"
  else
    awk -v m="$mine" -v b="$bk" 'BEGIN { printf "%s / %s (%.2f×)", m, b, m / b }'
  fi
}

# bench_case CASE: prints the case's table row.
bench_case() {
  local c=$1 d ctx late root i
  local cold=() noop=() touched=()
  d=$(case_dir "$c") || return 1
  ctx=$d/ctx
  late=$(sed -n 's/^LATE=//p' "$d/case.env")
  cp -p "$d/late.pristine" "$ctx/$late"   # an interrupted run may have left it edited
  for i in $(seq 1 "$REPS"); do
    root=$work/store-$c-$i
    import_bases "$root" "$ctx" || return 1
    timed cold "$BERTH" --root "$root" build -q --no-cache -t bench "$ctx" || return 1
    [ "$i" = 1 ] || rm -rf "$root"
  done
  root=$work/store-$c-1
  timed noop "$BERTH" --root "$root" build -q -t bench "$ctx" || return 1   # warm-up
  noop=()
  for i in $(seq 1 "$REPS"); do
    timed noop "$BERTH" --root "$root" build -q -t bench "$ctx" || return 1
  done
  for i in $(seq 1 "$REPS"); do
    { cat "$d/late.pristine"; echo "# touched $(date +%s%N)"; } >"$ctx/$late"
    timed touched "$BERTH" --root "$root" build -q -t bench "$ctx" || return 1
  done
  cp -p "$d/late.pristine" "$ctx/$late"
  rm -rf "$root"
  printf '| %s | %s | %s | %s |\n' "$c" "$(cell "$c" cold "${cold[@]}")" \
    "$(cell "$c" noop "${noop[@]}")" "$(cell "$c" touched "${touched[@]}")"
}

echo "berth build, median of $REPS (s): berth / BuildKit anchor (ratio)"
printf '| case | cold | no-op | touched |\n|---|---|---|---|\n'
failed=0
for c in "${cases[@]}"; do
  if ! bench_case "$c"; then
    printf '| %s | FAILED | | |\n' "$c"
    failed=1
    d=$(case_dir "$c") && late=$(sed -n 's/^LATE=//p' "$d/case.env") &&
      cp -p "$d/late.pristine" "$d/ctx/$late" || true
  fi
done
echo "($(($(date +%s) - started)) s)" >&2
exit "$failed"
