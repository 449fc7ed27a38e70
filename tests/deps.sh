#!/bin/sh
# Install (idempotently) every Debian package the build, the tests and the
# demo need. Runs apt-get only when something is missing.
set -eu

PKGS="build-essential pkg-config cmake libssl-dev libyaml-dev libsystemd-dev
libcmocka-dev openssh-server openssh-client nginx-light python3
python3-pytest socat curl iproute2 nftables procps psmisc
systemd-container debootstrap autossh iperf3 wrk gnuplot-nox dropbear-bin
python3-asyncssh passwd util-linux clang-14 libclang-rt-14-dev"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Services must not start at install time on machines without systemd.
$SUDO apt-get install -y -qq --no-install-recommends $missing
