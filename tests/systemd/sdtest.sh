#!/bin/bash
# A real systemd for service tests: PID 1 of a systemd-nspawn container
# booted from a debootstrap'ed Debian rootfs (see DESIGN.md §7 and
# tests/systemd/README.md).
#
# usage: sdtest.sh install          make install into $SDTEST_DIR/stage
#                                   (PREFIX=/usr/local, units and sysusers.d
#                                   under /usr/local/lib)
#        sdtest.sh setup            build the rootfs (cached; ~45 s once)
#        sdtest.sh boot [ARGS...]   boot the container; the stage's /usr/local
#                                   (if installed) is its /usr/local; ARGS
#                                   are more nspawn options
#        sdtest.sh run CMD...       run CMD inside the container (nsenter)
#        sdtest.sh oneshot CMD...   run CMD in the rootfs without booting it
#                                   (changes persist; the host's network;
#                                   SDTEST_ONESHOT_ARGS: more nspawn options)
#        sdtest.sh leader           print the container's PID 1
#        sdtest.sh down             halt the container, remove its cgroup
#        sdtest.sh status           "up" or "down"
#
# Idempotent: setup does nothing when the cached rootfs matches the package
# list, boot says "already up" when the container runs, down does nothing
# when it is down. Must run as root. Every process it ends is one it started
# (recorded PIDs, or processes inside its own cgroup).
#
# Environment:
#   SDTEST_PROFILE vps: a bare Debian VPS for tests/integration/test_vps.py
#                  (OpenSSH's server, nginx and certbot, no tunnels binary;
#                  defaults: dir <repo>/build/sdtest-vps, name tunnels-vps)
#                  home: a bare Debian machine (systemd and nothing else)
#                  for tests/integration/test_readme_install.py
#                  (defaults: dir <repo>/build/sdtest-home, name tunnels-home)
#   SDTEST_DIR     work dir (default <repo>/build/sdtest); holds rootfs/
#   SDTEST_NAME    machine and cgroup name (default tunnels-sdtest)
#   SDTEST_BIN     binary whose runtime libraries the rootfs needs
#                  (default <repo>/build/tunnels, if it exists)
#   SDTEST_PKGS    extra packages for the rootfs, comma-separated
#   SDTEST_MIRROR  Debian mirror (default: the one apt on this host uses)
#   SDTEST_SUITE   Debian suite (default: this host's VERSION_CODENAME)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
case ${SDTEST_PROFILE:-} in
"")
	W=${SDTEST_DIR:-$REPO/build/sdtest}
	NAME=${SDTEST_NAME:-tunnels-sdtest}
	BIN=${SDTEST_BIN:-$REPO/build/tunnels}
	# procps: /bin/kill; man-db: `systemd-analyze verify` runs man for
	# each Documentation=man: entry (and so checks the installed pages).
	BASE_PKGS=systemd,systemd-sysv,dbus,procps,libyaml-0-2,man-db ;;
vps)
	W=${SDTEST_DIR:-$REPO/build/sdtest-vps}
	NAME=${SDTEST_NAME:-tunnels-vps}
	BIN=${SDTEST_BIN:-/nonexistent}
	# What a fresh VPS has after `apt-get install openssh-server nginx
	# certbot`; debootstrap does not resolve virtual packages, so
	# python3-cryptography's cffi backend is named.
	BASE_PKGS=systemd,systemd-sysv,dbus,procps,openssh-server,nginx,certbot,python3-cffi-backend ;;
home)
	W=${SDTEST_DIR:-$REPO/build/sdtest-home}
	NAME=${SDTEST_NAME:-tunnels-home}
	BIN=${SDTEST_BIN:-/nonexistent}
	# A minimal Debian 12 that boots: what the README's install starts
	# from (no make, git, compiler or ssh client).
	BASE_PKGS=systemd,systemd-sysv,dbus ;;
*)
	echo "sdtest: unknown SDTEST_PROFILE '$SDTEST_PROFILE'" >&2; exit 2 ;;
esac
ROOT=$W/rootfs
CG=$NAME

log() { echo "sdtest: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$W"

# Serialise setup/boot/down between concurrent callers.
exec 9>"$W/.lock"
lock() { flock 9; }

# The Debian mirror apt already uses (never a hard-coded host).
mirror() {
	local m=""
	if [ -n "${SDTEST_MIRROR:-}" ]; then echo "$SDTEST_MIRROR"; return; fi
	# deb822 sources: the first URIs of a stanza that is not -security.
	if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
		m=$(awk 'BEGIN{RS=""; FS="\n"}
		    { uri=""; suites="";
		      for (i = 1; i <= NF; i++) {
		        if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri=a[2] }
		        if ($i ~ /^Suites:/) suites=$i
		        if ($i ~ /^Types:/ && $i !~ /[ \t]deb([ \t]|$)/) uri=""
		      }
		      if (uri != "" && suites !~ /-security/) { print uri; exit } }' \
		    /etc/apt/sources.list.d/*.sources)
	fi
	if [ -z "$m" ] && [ -e /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /-security/ {
		    for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit } }' \
		    /etc/apt/sources.list)
	fi
	[ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list{,.d/*.sources}; set SDTEST_MIRROR"
	echo "$m"
}

suite() {
	if [ -n "${SDTEST_SUITE:-}" ]; then echo "$SDTEST_SUITE"; return; fi
	# shellcheck disable=SC1091
	( . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}" )
}

# Debian packages holding the shared libraries a binary links.
deps() {
	local f
	for f in $(ldd "$1" | awk '/=> \//{print $3}'); do
		dpkg -S "$f" 2>/dev/null || dpkg -S "$(realpath "$f")" 2>/dev/null || true
	done | cut -d: -f1 | sort -u | paste -sd, -
}

pkglist() {
	local p=$BASE_PKGS
	if [ -x "$BIN" ]; then
		local d; d=$(deps "$BIN")
		[ -n "$d" ] && p="$p,$d"
	fi
	[ -n "${SDTEST_PKGS:-}" ] && p="$p,$SDTEST_PKGS"
	echo "$p" | tr ',' '\n' | grep -v '^$' | sort -u | paste -sd, -
}

# make install as a user would, into the stage. While the container runs,
# files are replaced in place (its directory bind stays valid; a
# daemon-reload picks up changed units).
install_() {
	lock
	[ "$(status_)" = up ] || rm -rf "$W/stage"
	make -s -C "$REPO" install DESTDIR="$W/stage" PREFIX=/usr/local \
	    UNITDIR=/usr/local/lib/systemd/system \
	    SYSUSERSDIR=/usr/local/lib/sysusers.d
}

setup() {
	if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
		die "systemd-nspawn and debootstrap are needed (make deps)"
	fi
	local pkgs want; pkgs=$(pkglist)
	want="$(suite) $pkgs"
	lock
	if [ -e "$ROOT/.sdtest-ok" ] && [ "$(cat "$ROOT/.sdtest-ok")" = "$want" ]; then
		return 0
	fi
	[ "$(status_)" = down ] || die "container $NAME is up; cannot rebuild its rootfs"
	local m t0; m=$(mirror); t0=$(date +%s)
	log "debootstrap $(suite) from $m with $pkgs (once; ~45 s)"
	rm -rf "$ROOT" "$ROOT.new"
	if ! debootstrap --variant=minbase --include="$pkgs" "$(suite)" \
	    "$ROOT.new" "$m" >"$W/debootstrap.log" 2>&1; then
		tail -n 30 "$W/debootstrap.log" >&2
		rm -rf "$ROOT.new"
		die "debootstrap failed (log: $W/debootstrap.log)"
	fi
	# An empty machine-id: each boot gets a transient one.
	: >"$ROOT.new/etc/machine-id"
	echo "$NAME" >"$ROOT.new/etc/hostname"
	# No login prompts in the container.
	ln -sf /dev/null "$ROOT.new/etc/systemd/system/console-getty.service"
	ln -sf /dev/null "$ROOT.new/etc/systemd/system/getty@.service"
	apt_clean "$ROOT.new"
	echo "$want" >"$ROOT.new/.sdtest-ok"
	mv "$ROOT.new" "$ROOT"
	log "rootfs ready in $(( $(date +%s) - t0 )) s: $ROOT ($(du -sh "$ROOT" | cut -f1))"
}

apt_clean() { rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* 2>/dev/null || true; }

# The cgroup hierarchies nspawn gets a private subtree in: hybrid (v1
# name=systemd + v2 at unified/), pure v2 (the root), or legacy v1.
cg_roots() {
	if [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/systemd ]; then
		echo /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
	elif [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		echo /sys/fs/cgroup
	else
		echo /sys/fs/cgroup/systemd
	fi
}

# The recorded nspawn PID, if that process is still our nspawn.
nspawn_pid() {
	local p
	[ -e "$W/$NAME.nspawn" ] || return 1
	p=$(cat "$W/$NAME.nspawn")
	[ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "systemd-nspawn .*-M $NAME " || return 1
	echo "$p"
}

leader() {
	local ns l
	ns=$(nspawn_pid) || die "container $NAME is not running"
	l=$(cat "$W/$NAME.leader" 2>/dev/null) || die "no leader recorded"
	echo "$l"
}

in_ct() { nsenter -t "$(leader)" -a "$@"; }

status_() { if nspawn_pid >/dev/null; then echo up; else echo down; fi; }

boot() {
	lock
	if nspawn_pid >/dev/null; then echo "already up"; return 0; fi
	[ -e "$ROOT/.sdtest-ok" ] || die "no rootfs: run setup first"
	rm -f "$W/$NAME.nspawn" "$W/$NAME.leader"
	cg_clean
	local r binds=()
	[ -d "$W/stage/usr/local" ] && binds+=("--bind-ro=$W/stage/usr/local:/usr/local")
	for r in $(cg_roots); do mkdir -p "$r/$CG"; done
	# Start nspawn from our own cgroup; the host has no systemd to register
	# with, hence --register=no --keep-unit.
	( for r in $(cg_roots); do echo "$BASHPID" >"$r/$CG/cgroup.procs"; done
	  exec systemd-nspawn --boot --register=no --keep-unit --console=passive \
	      -M "$NAME" -D "$ROOT" --volatile=overlay ${binds[@]+"${binds[@]}"} "$@" ) 9>&- \
	    </dev/null >"$W/$NAME.console.log" 2>&1 &
	local ns=$! l="" _
	echo "$ns" >"$W/$NAME.nspawn"
	# The container's PID 1 is nspawn's child, once it has exec'd systemd.
	for _ in $(seq 1 200); do
		kill -0 "$ns" 2>/dev/null || break
		for l in $(cat "/proc/$ns/task/$ns/children" 2>/dev/null || true); do
			[ "$(cat "/proc/$l/comm" 2>/dev/null)" = systemd ] && break 2
		done
		l=""; sleep 0.05
	done
	if [ -z "$l" ]; then
		cat "$W/$NAME.console.log" >&2
		down_locked
		die "container did not start"
	fi
	echo "$l" >"$W/$NAME.leader"
	local st=""
	for _ in $(seq 1 300); do
		st=$(nsenter -t "$l" -a systemctl is-system-running 2>/dev/null || true)
		case "$st" in running|degraded) break;; esac
		sleep 0.05
	done
	echo "$st"
	case "$st" in running|degraded) ;; *)
		tail -n 40 "$W/$NAME.console.log" >&2
		nsenter -t "$l" -a systemctl --no-pager --failed >&2 || true
		down_locked
		die "container did not finish booting (state '$st')";;
	esac
}

# Run a command in the rootfs, not booted: changes stay (the caller's own
# copy of a rootfs), the network is the host's (apt reaches the mirror).
oneshot() {
	lock
	[ "$(status_)" = down ] || die "container $NAME is up"
	[ -e "$ROOT/.sdtest-ok" ] || die "no rootfs: run setup first"
	cg_clean
	local r rc=0
	for r in $(cg_roots); do mkdir -p "$r/$CG"; done
	# shellcheck disable=SC2086
	( for r in $(cg_roots); do echo "$BASHPID" >"$r/$CG/cgroup.procs"; done
	  exec systemd-nspawn --quiet --register=no --keep-unit -M "$NAME" \
	      -D "$ROOT" ${SDTEST_ONESHOT_ARGS:-} "$@" ) 9>&- </dev/null || rc=$?
	cg_clean
	return $rc
}

# Remove our cgroup subtree; processes left in it (only after a SIGKILLed
# nspawn) are the container's, i.e. ours.
cg_pids() { find "$1" -name cgroup.procs -print0 2>/dev/null | xargs -0r cat 2>/dev/null; }
cg_clean() {
	local r p _
	for r in $(cg_roots); do
		[ -d "$r/$CG" ] || continue
		for p in $(cg_pids "$r/$CG"); do
			kill -KILL "$p" 2>/dev/null || true
		done
		for _ in $(seq 1 50); do
			[ -z "$(cg_pids "$r/$CG")" ] && break
			sleep 0.1
		done
		find "$r/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		[ -d "$r/$CG" ] && log "warning: could not remove $r/$CG"
	done
	rmdir "/run/systemd/nspawn/propagate/$NAME" 2>/dev/null || true
}

down_locked() {
	local ns _
	if ns=$(nspawn_pid); then
		# nspawn turns SIGTERM into SIGRTMIN+3 for the container's
		# systemd: a clean halt.
		kill -TERM "$ns" 2>/dev/null || true
		for _ in $(seq 1 150); do kill -0 "$ns" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$ns" 2>/dev/null; then
			log "container did not halt within 15 s; SIGKILL to nspawn $ns"
			kill -KILL "$ns" 2>/dev/null || true
			for _ in $(seq 1 50); do kill -0 "$ns" 2>/dev/null || break; sleep 0.1; done
		fi
	fi
	rm -f "$W/$NAME.nspawn" "$W/$NAME.leader"
	cg_clean
}

down() { lock; down_locked; }

case "${1:-}" in
install) install_ ;;
setup) setup ;;
boot) shift; boot "$@" ;;
run) shift; in_ct "$@" ;;
oneshot) shift; oneshot "$@" ;;
leader) leader ;;
down) down ;;
status) status_ ;;
mirror) mirror ;;
pkgs) pkglist ;;
*) echo "usage: $0 install | setup | boot [NSPAWN-ARGS...] | run CMD... | oneshot CMD... | leader | down | status" >&2; exit 2 ;;
esac
