#!/usr/bin/env bash
# `berth build` on the shared cases (../shared/bench/cases): cold (fresh
# store, base imported, untimed), no-op rebuild and one late-COPYed file
# changed, median of REPS (default 5) each, beside the BuildKit figures of
# ../shared/bench/ANCHORS.md (issue 5 goals: no-op ≤ 0.2×, cold and
# touched ≤ 0.5× BuildKit).
# Usage: bench/build.sh [CASE…]   (default: small many-steps multistage big-context)
# BERTH=path/to/berth uses that binary instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd ../shared/bench && pwd)
if [ -z "${BERTH:-}" ]; then
  . scripts/lib.sh
  need_cargo
  cargo build --quiet --release --bin berth
  BERTH=$PWD/target/release/berth
fi
REPS=${REPS:-5}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export GEN=$work/gen
GEN=$work bash "$shared/base/make-busybox.sh" "$work/busybox.tar" 2>/dev/null
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(small many-steps multistage big-context)
bash "$shared/cases/gen-all.sh" "${cases[@]}" 2>/dev/null

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

printf '| case | cold | no-op | touched |\n|---|---|---|---|\n'
for c in "${cases[@]}"; do
  d=$GEN/cases/$c; ctx=$d/ctx
  late=$(sed -n 's/^LATE=//p' "$d/case.env")
  cold=(); noop=(); touched=()
  for i in $(seq 1 "$REPS"); do
    root=$work/store-$c-$i
    "$BERTH" --root "$root" import "$work/busybox.tar" localbase/busybox:1 >/dev/null
    cold+=("$(ms "$BERTH" --root "$root" build -q --no-cache -t bench "$ctx")")
  done
  root=$work/store-$c-1
  "$BERTH" --root "$root" build -q -t bench "$ctx" >/dev/null
  for i in $(seq 1 "$REPS"); do
    noop+=("$(ms "$BERTH" --root "$root" build -q -t bench "$ctx")")
  done
  for i in $(seq 1 "$REPS"); do
    { cat "$d/late.pristine"; echo "# touched $(date +%s%N)"; } > "$ctx/$late"
    touched+=("$(ms "$BERTH" --root "$root" build -q -t bench "$ctx")")
  done
  cp -p "$d/late.pristine" "$ctx/$late"
  printf '| %s | %s | %s | %s |\n' "$c" \
    "$(printf '%s\n' "${cold[@]}" | median)" \
    "$(printf '%s\n' "${noop[@]}" | median)" \
    "$(printf '%s\n' "${touched[@]}" | median)"
done
