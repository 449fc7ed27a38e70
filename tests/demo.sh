#!/bin/sh
# make demo: a throwaway sshd on loopback (the "VPS"), a small local web
# app (the service behind NAT), and tunnels between them. Shows a request
# travelling through the tunnel, then the status table, and cleans up
# everything it started.
set -eu

BIN=${1:-build/tunnels}
PY=/usr/bin/python3
DIR=$(mktemp -d /tmp/tunnels-demo.XXXXXX)
PIDS=""

cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	# sshd's per-connection child exits with its listener's connection.
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }

# A free loopback port (bind to port 0, read it, close).
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait (up to $1 tenths of a second) for a command to succeed.
wait_for() {
	n=$1; shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		n=$((n - 1))
		$PY -c 'import time; time.sleep(0.1)'
	done
	return 1
}

SSHD_PORT=$(free_port)
APP_PORT=$(free_port)
REMOTE_PORT=$(free_port)
USER_NAME=$(id -un)

step "keys: a host key for the demo sshd, an ed25519 key for tunnels"
ssh-keygen -q -t ed25519 -N '' -C demo-host -f "$DIR/host_key"
ssh-keygen -q -t ed25519 -N '' -C tunnels-demo -f "$DIR/id_ed25519"
chmod 600 "$DIR/id_ed25519"
# Least privilege: this key may only listen on the one loopback port.
printf 'restrict,port-forwarding,permitlisten="127.0.0.1:%s" %s\n' \
    "$REMOTE_PORT" "$(cat "$DIR/id_ed25519.pub")" >"$DIR/authorized_keys"
printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" \
    "$(cut -d' ' -f1,2 "$DIR/host_key.pub")" >"$DIR/known_hosts"
cat "$DIR/authorized_keys"

step "sshd on 127.0.0.1:$SSHD_PORT (plays the VPS)"
[ -d /run/sshd ] || mkdir -p /run/sshd
cat >"$DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSHD_PORT
HostKey $DIR/host_key
PidFile $DIR/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding remote
GatewayPorts no
ClientAliveInterval 15
ClientAliveCountMax 3
EOF
/usr/sbin/sshd -t -f "$DIR/sshd_config"
/usr/sbin/sshd -D -f "$DIR/sshd_config" -E "$DIR/sshd.log" &
PIDS="$PIDS $!"

step "a local web app on 127.0.0.1:$APP_PORT (plays the service behind NAT)"
mkdir -p "$DIR/www"
echo "Hello from behind the NAT, through a tunnel." >"$DIR/www/index.html"
$PY -m http.server "$APP_PORT" --bind 127.0.0.1 --directory "$DIR/www" \
    >"$DIR/app.log" 2>&1 &
PIDS="$PIDS $!"

step "tunnels config"
cat >"$DIR/tunnels.yaml" <<EOF
control: $DIR/control.sock
state_dir: $DIR/state
servers:
  vps:
    host: 127.0.0.1
    port: $SSHD_PORT
    user: $USER_NAME
    identity: $DIR/id_ed25519
    known_hosts: $DIR/known_hosts
tunnels:
  - name: web
    remote: $REMOTE_PORT        # 127.0.0.1:$REMOTE_PORT on the server
    local: $APP_PORT
EOF
cat "$DIR/tunnels.yaml"
"$BIN" check -c "$DIR/tunnels.yaml"

step "tunnels run"
"$BIN" run -c "$DIR/tunnels.yaml" 2>"$DIR/tunnels.log" &
PIDS="$PIDS $!"
if ! wait_for 100 "$BIN" status -c "$DIR/tunnels.yaml"; then
	echo "demo: the tunnel did not come up; daemon log:" >&2
	cat "$DIR/tunnels.log" >&2
	exit 1
fi
cat "$DIR/tunnels.log"

step "a request to the server's port $REMOTE_PORT, answered by the local app"
echo "\$ curl -s http://127.0.0.1:$REMOTE_PORT/"
curl -sS "http://127.0.0.1:$REMOTE_PORT/"

step "tunnels status"
"$BIN" status -c "$DIR/tunnels.yaml"

step "done: stopping everything the demo started"
