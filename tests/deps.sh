#!/bin/sh
# Install (idempotently) the Debian packages a target needs; apt-get runs
# only when something is missing.
#
#   deps.sh build   what `make`, `make install` and the daemon need
#                   (make build-deps)
#   deps.sh test    that, plus what the tests, the demo and the bench
#                   need (make deps)
#
# Nothing installed here is left running or enabled: the tests start
# their own sshd, nginx and the rest on allocated ports. While apt-get
# runs, a policy-rc.d (unless one exists) stops packages from starting
# their services, and afterwards every unit that a package installed by
# this run enabled is disabled again.
set -eu

BUILD="build-essential pkg-config cmake libssl-dev libyaml-dev
libsystemd-dev debian-archive-keyring openssh-client"
TEST="libcmocka-dev openssh-server nginx-light python3 python3-pytest
socat curl iproute2 nftables procps psmisc systemd-container debootstrap
autossh iperf3 wrk gnuplot-nox dropbear-bin python3-asyncssh passwd
util-linux openssl pebble dash shellcheck clang-14 libclang-rt-14-dev"

case ${1:-build} in
build)	PKGS=$BUILD ;;
test)	PKGS="$BUILD $TEST" ;;
*)	echo "usage: $0 build | test" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present (${1:-build})"
	exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive

tmp=$(mktemp -d)
policy=""
cleanup() {
	[ -z "$policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

installed() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' |
	    awk '$1 == "ii" { print $2 }' | sort
}
installed >"$tmp/before"
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\n# tests/deps.sh: no service starts while it installs.\nexit 101\n' |
	    $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	policy=1
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
installed >"$tmp/after"

# policy-rc.d stops a package from starting its service, not from
# enabling it (at the next boot): undo that for every new package.
if command -v systemctl >/dev/null 2>&1; then
	comm -13 "$tmp/before" "$tmp/after" | while read -r p; do
		dpkg-query -L "$p" 2>/dev/null |
		    grep -E '^(/usr)?/lib/systemd/system/[^/@]+\.(service|socket|timer|path)$' ||
		    true
	done | sed 's|.*/||' | sort -u | while read -r u; do
		if [ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ]; then
			$SUDO systemctl disable --quiet "$u" 2>/dev/null || true
			echo "deps: disabled $u (installed for the tests, not as a service)"
		fi
	done
fi
