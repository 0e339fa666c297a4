#!/usr/bin/env bash
# berth's main job on a real example. Today: lint and dump the clinic
# example's Dockerfile, then make a busybox base image from the host's
# busybox-static, import it reproducibly, run a container from it, and show
# and check the store (building the example arrives with `berth build`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
apt_install busybox-static tar libseccomp-dev tini
cargo build --quiet --bin berth
berth=$PWD/target/debug/berth
dockerfile=examples/clinic/Dockerfile

echo "== berth dockerfile lint $dockerfile"
"$berth" dockerfile lint "$dockerfile"
echo "== berth dockerfile dump $dockerfile"
"$berth" dockerfile dump "$dockerfile"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/busybox-rootfs.tar
GEN=$work bash ../shared/bench/base/make-busybox.sh "$rootfs"
export SOURCE_DATE_EPOCH=1704067200   # the same input gives the same image ID
echo "== berth import $rootfs localbase/busybox:1"
"$berth" import --change 'CMD ["sh"]' "$rootfs" localbase/busybox:1
echo "== berth images"
"$berth" images
echo "== berth history localbase/busybox:1"
"$berth" history localbase/busybox:1
echo "== berth run --rm localbase/busybox:1 sh -c 'echo hello from \$(hostname); id'"
"$berth" run --rm localbase/busybox:1 sh -c 'echo hello from $(hostname); id'
echo "== berth system check"
"$berth" system check
