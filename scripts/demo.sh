#!/usr/bin/env bash
# berth's main job on a real example: the "online clinic" Django site in
# examples/clinic. Lint its Dockerfile; make its base image once (a Debian
# bookworm python rootfs from mmdebstrap, plus the host's CA bundle so pip
# trusts this network's TLS), `berth build -t clinic examples/clinic` (RUN
# installs Django and gunicorn from the package index through the default
# bridge's NAT), `berth run -d -p 8000:8000 clinic`, and show the site
# answering on 127.0.0.1:8000. Also: a busybox image imported reproducibly,
# run in the foreground, and `system check` of the store.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
apt_install busybox-static tar libseccomp-dev nftables iproute2 curl mmdebstrap ca-certificates tini
cargo build --quiet --bin berth
berth=$PWD/target/debug/berth
dockerfile=examples/clinic/Dockerfile

echo "== berth dockerfile lint $dockerfile"
"$berth" dockerfile lint "$dockerfile"
echo "== berth dockerfile dump $dockerfile"
"$berth" dockerfile dump "$dockerfile"

work=$(mktemp -d)
trap '"$berth" rm -f clinic >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
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
unset SOURCE_DATE_EPOCH
if [ -z "$("$berth" images -q localbase/python:3.11)" ]; then
  echo "== making the clinic's base image localbase/python:3.11 (once)"
  make_python_base "$work/python-rootfs.tar"
  import_python_base "$work/python-rootfs.tar" "$berth"
fi
echo "== berth build -t clinic examples/clinic"
"$berth" build -t clinic examples/clinic
echo "== berth run -d --name clinic -p 8000:8000 clinic"
"$berth" rm -f clinic >/dev/null 2>&1 || true
"$berth" run -d --name clinic -p 8000:8000 clinic
"$berth" ps
echo "== curl http://127.0.0.1:8000/"
for i in $(seq 1 150); do curl -sf http://127.0.0.1:8000/ && break; sleep 0.2; done
curl -sf http://127.0.0.1:8000/ >/dev/null   # fails the demo if it never answered
"$berth" logs clinic | tail -n 5
"$berth" rm -f clinic
echo "== berth system check"
"$berth" system check
