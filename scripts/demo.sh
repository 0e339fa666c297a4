#!/usr/bin/env bash
# berth's main job on a real example. Today: lint and dump the clinic
# example's Dockerfile, then make a busybox base image from the host's
# busybox-static, import it reproducibly, run a container from it, serve
# HTTP from a detached container published on 127.0.0.1:8000, and show and
# check the store (building the example arrives with `berth build`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
apt_install busybox-static tar libseccomp-dev nftables iproute2 curl tini
cargo build --quiet --bin berth
berth=$PWD/target/debug/berth
dockerfile=examples/clinic/Dockerfile

echo "== berth dockerfile lint $dockerfile"
"$berth" dockerfile lint "$dockerfile"
echo "== berth dockerfile dump $dockerfile"
"$berth" dockerfile dump "$dockerfile"

work=$(mktemp -d)
trap '"$berth" rm -f clinic-web >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
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
echo "== berth run -d -p 8000:80 --name clinic-web localbase/busybox:1 httpd"
"$berth" run -d -p 8000:80 --name clinic-web localbase/busybox:1 \
  sh -c 'mkdir -p /www && echo "<h1>Online clinic: doctors</h1>" > /www/index.html && exec httpd -f -p 80 -h /www'
"$berth" ps
echo "== curl http://127.0.0.1:8000/"
for i in $(seq 1 50); do curl -sf http://127.0.0.1:8000/ && break; sleep 0.1; done
"$berth" logs clinic-web
"$berth" rm -f clinic-web
echo "== berth system check"
"$berth" system check
