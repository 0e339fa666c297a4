# Shared by scripts/*.sh: checks for the Rust toolchain and installs Debian
# packages that are missing.

need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "berth needs a Rust toolchain (cargo, rustc >= 1.87); install it with rustup" >&2
            exit 1
        fi
    fi
}

# apt_install PKG...: installs the packages that are not installed yet.
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# make_python_base OUT_TAR: the rootfs of localbase/python:3.11, a Debian
# bookworm python3 + pip from ../shared/bench/base/make-python.sh
# (mmdebstrap, about a minute), plus the host's CA bundle so that pip in a
# build trusts this network's TLS (its egress re-signs it).
make_python_base() {
    local out=$1 ca
    # Its scratch files go beside OUT_TAR unless GEN says where.
    GEN=${GEN:-$(dirname "$out")} \
        bash "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench/base/make-python.sh" "$out"
    ca=$(mktemp -d)
    mkdir -p "$ca/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$ca/etc/ssl/certs/"
    tar --append -f "$out" -C "$ca" ./etc/ssl/certs/ca-certificates.crt
    rm -rf "$ca"
}

# import_python_base TAR BERTH [GLOBAL_FLAG...]: imports a make_python_base
# tar as localbase/python:3.11, with pip pointed at the CA bundle.
import_python_base() {
    local tar=$1 berth=$2
    shift 2
    "$berth" "$@" import --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' "$tar" localbase/python:3.11
}
