#!/bin/sh
# Installs the Debian packages murmer needs, only when some are missing.
# Idempotent: a second run checks dpkg and returns in well under a second.
set -eu
# libmurmer's crypto is GnuTLS and nettle (nettle-dev), with libsodium for
# Ed25519 verification; libssl-dev only for
# the unit tests that check our key and certificate files against OpenSSL,
# openssl for the tests' and docs' command line.
PKGS="build-essential pkg-config libuv1-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev
libgnutls28-dev nettle-dev libsodium-dev gnutls-bin libssl-dev openssl libcjson-dev libavahi-client-dev
avahi-daemon avahi-utils dbus libcmocka-dev bats bats-assert bats-support bats-file
iproute2 iptables nftables scdoc bash-completion clang clang-format libclang-rt-14-dev
procps psmisc
jq python3 curl prometheus tmux"
missing=""
for p in $PKGS; do
    s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$s" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
# prometheus (for promtool and the scrape test of tests/bats/55-metrics.bats;
# ~96 MB) without its recommended node exporter, a service of its own.
# shellcheck disable=SC2086,SC2046
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    $(printf '%s\n' $missing | grep -x prometheus) >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    $(printf '%s\n' $missing | grep -vx prometheus) >/dev/null
