#!/bin/sh
# Build libssh2 as a static library into DIR (default build/libssh2) from
# Debian 13's source package, for systems whose own libssh2 is older than
# 1.11.1 (Debian 12 ships 1.10.0). The source comes with apt from the
# Debian mirror this machine already uses, through a temporary source list:
# the system's apt configuration, lists and caches are never touched.
# OpenSSL stays the system's shared library, so its security updates apply;
# libssh2's own are a `make deps` away (rm -r DIR first to pick them up).
#
# usage: build.sh [DIR]
# env:   TUNNELS_DEBIAN_MIRROR   the archive to fetch from (default: the
#                                one apt uses for this system's release)
#        TUNNELS_LIBSSH2_SUITE   the suite (default trixie)
set -eu

OUT=${1:-build/libssh2}
MIN=1.11.1
SUITE=${TUNNELS_LIBSSH2_SUITE:-trixie}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "libssh2: $*" >&2; }
die() { say "$*"; exit 1; }

if [ -f "$OUT/lib/libssh2.a" ] && [ -f "$OUT/SOURCE" ]; then
	say "present: $(cat "$OUT/SOURCE")"
	exit 0
fi
for t in apt-get dpkg-source cmake cc; do
	command -v $t >/dev/null 2>&1 || die "$t is missing (make deps installs it)"
done
pkg-config --exists libcrypto || die "OpenSSL's headers are missing (libssl-dev; make deps installs it)"
[ -r "$KEYRING" ] || die "$KEYRING is missing (debian-archive-keyring)"

# The archive (and its security archive) apt already fetches this system's
# release from, as apt itself reports it: works for sources.list and
# deb822 .sources alike, and never names a host of our own choosing.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=${TUNNELS_DEBIAN_MIRROR:-$(apt-cache policy 2>/dev/null |
    awk -v s="$codename/main" '$3 == s { print $2; exit }')}
secmirror=$(apt-cache policy 2>/dev/null |
    awk -v s="$codename-security/main" '$3 == s { print $2; exit }')
[ -n "$mirror" ] || die "cannot tell which Debian mirror apt uses for '$codename'; set TUNNELS_DEBIAN_MIRROR"

mkdir -p "$(dirname "$OUT")"
work=$(cd "$(dirname "$OUT")" && mktemp -d "$PWD/libssh2-src.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
{
	echo "deb-src [signed-by=$KEYRING] $mirror $SUITE main"
	[ -z "$secmirror" ] || echo "deb-src [signed-by=$KEYRING] $secmirror $SUITE-security main"
} >"$work/sources.list"
set -- -o Dir::Etc::SourceList="$work/sources.list" \
    -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$work/lists" \
    -o Dir::Cache="$work/cache" -o Dir::State::Status=/var/lib/dpkg/status \
    -o APT::Sandbox::User=root -o Debug::NoLocking=1 -q

say "fetching the $SUITE source package from $mirror"
apt-get "$@" update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; die "apt-get update failed"; }
(cd "$work/src" && apt-get "$@" source --download-only libssh2) >>"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; die "apt-get source libssh2 failed"; }
dsc=$(ls "$work"/src/libssh2_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc")
dpkg --compare-versions "$version" ge "$MIN" ||
    die "$SUITE has libssh2 $version, older than $MIN"
# apt checked the files against the signed Release file; dpkg-source
# applies Debian's patches (its security fixes among them).
dpkg-source -q -x "$dsc" "$work/tree" >>"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; die "dpkg-source failed"; }

say "building libssh2 $version (static, OpenSSL)"
# No zlib (compression buys nothing for tunnels and is attack surface);
# position-independent so a PIE binary can link it.
cmake -S "$work/tree" -B "$work/bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_STATIC_LIBS=ON -DCRYPTO_BACKEND=OpenSSL \
    -DENABLE_ZLIB_COMPRESSION=OFF -DBUILD_EXAMPLES=OFF -DBUILD_TESTING=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_INSTALL_PREFIX="$work/inst" >"$work/build.log" 2>&1 &&
    cmake --build "$work/bld" -j"$(nproc)" >>"$work/build.log" 2>&1 &&
    cmake --install "$work/bld" >>"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log" >&2; die "build failed"; }

rm -rf "$OUT"
mkdir -p "$OUT/lib"
cp -R "$work/inst/include" "$OUT/include"
cp "$work/inst/lib/libssh2.a" "$OUT/lib/"
cp "$work/tree/COPYING" "$OUT/"
echo "Debian source package libssh2 $version" >"$OUT/SOURCE"
say "built into $OUT: $(cat "$OUT/SOURCE")"
