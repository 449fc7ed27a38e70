# ---- the library of `tunnels server-setup --script` (src/setup_script.sh)
#
# POSIX sh (dash), run as root on the server. What this home needs comes
# from the variables and data functions generated above this part (T_*,
# t_data, t_nginx_site, t_certs, t_webroots); everything here only
# converges files to them:
# - a file is replaced only when its bytes differ (compared first), by a
#   temporary file in the same directory renamed over it;
# - every replaced file is saved first, and put back when `sshd -t` or
#   `nginx -t` refuses the result;
# - a service is reloaded only when one of its files changed.
# Standard output carries only the server's host keys as known_hosts
# lines; everything else goes to standard error.

T_NOTES=""
T_NB=0
T_CHANGED=0
T_PENDING=0
WORK=""

t_say() { printf 'tunnels-setup: %s\n' "$*"; }
t_die() { printf 'tunnels-setup: error: %s\n' "$*" >&2; exit 1; }
# One line of the summary printed at the end.
t_note() {
	T_NOTES="$T_NOTES  $*
"
}

t_cleanup() {
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		rm -rf "$WORK"
	fi
}

# Save FILE's current state in GROUP, so that t_rollback GROUP puts it
# back (or removes it, when it did not exist).
t_backup() {
	T_NB=$((T_NB + 1))
	if [ -e "$2" ]; then
		cp -p "$2" "$WORK/bak.$T_NB"
		printf '%s %s\n' "$T_NB" "$2" >>"$WORK/restore.$1"
	else
		printf '%s %s\n' "-$T_NB" "$2" >>"$WORK/restore.$1"
	fi
}

# Put back every file saved in GROUP.
t_rollback() {
	[ -f "$WORK/restore.$1" ] || return 0
	while IFS= read -r _l; do
		_n=${_l%% *}
		_f=${_l#* }
		case $_n in
		-*)	rm -f "$_f" ;;
		*)	cp -p "$WORK/bak.$_n" "$_f.tunnels-restore"
			mv -f "$_f.tunnels-restore" "$_f" ;;
		esac
		t_say "restored $_f" >&2
	done <"$WORK/restore.$1"
	rm -f "$WORK/restore.$1"
}

# t_put GROUP NEW DEST MODE OWNER:GROUP: make DEST hold NEW's bytes with
# that mode and owner. Sets T_CHANGED to 1 when DEST's bytes changed, 0
# otherwise (a fixed mode or owner is noted, but reloads nothing).
t_put() {
	T_CHANGED=0
	if [ -f "$3" ] && [ ! -L "$3" ] && cmp -s "$2" "$3"; then
		if [ "$(stat -c '%a %U:%G' "$3")" != "$4 $5" ]; then
			chown "$5" "$3"
			chmod "$4" "$3"
			t_note "$3: owner and mode set to $5 $4"
		fi
		return 0
	fi
	t_backup "$1" "$3"
	_tmp=$(mktemp "$(dirname "$3")/.tunnels-new.XXXXXX")
	cat "$2" >"$_tmp"
	chown "$5" "$_tmp"
	chmod "$4" "$_tmp"
	mv -f "$_tmp" "$3"
	T_CHANGED=1
}

# 0 when systemd runs this machine.
t_systemd() {
	[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# ---- the account and its key

t_account() {
	if ! getent passwd "$T_USER" >/dev/null; then
		useradd --create-home --shell /bin/sh "$T_USER"
		# Not locked ("!"): sshd without PAM refuses locked accounts;
		# "*" matches no password, so only the key logs in.
		usermod -p '*' "$T_USER"
		t_note "account $T_USER: created"
	fi
	T_HOMEDIR=$(getent passwd "$T_USER" | cut -d: -f6)
	T_UID=$(id -u "$T_USER")
	T_GID=$(id -g "$T_USER")
	[ -n "$T_HOMEDIR" ] || t_die "account $T_USER has no home directory"
}

# The account's authorized_keys file, as sshd sees it (AuthorizedKeysFile
# with %h, %u, %U and %% expanded; relative to the home directory).
t_keys_path() {
	_akf=$(sshd -T -C "user=$T_USER,host=localhost,addr=127.0.0.1" \
	    2>/dev/null | awk '$1 == "authorizedkeysfile" { print $2; exit }')
	case $_akf in
	"" | none) _akf=.ssh/authorized_keys ;;
	esac
	H=$T_HOMEDIR U=$T_USER I=$T_UID P=$_akf awk 'BEGIN {
		p = ENVIRON["P"]; out = ""
		while ((i = index(p, "%")) > 0) {
			c = substr(p, i + 1, 1)
			out = out substr(p, 1, i - 1)
			if (c == "h") out = out ENVIRON["H"]
			else if (c == "u") out = out ENVIRON["U"]
			else if (c == "U") out = out ENVIRON["I"]
			else if (c == "%") out = out "%"
			else out = out "%" c
			p = substr(p, i + 2)
		}
		out = out p
		if (substr(out, 1, 1) != "/") out = ENVIRON["H"] "/" out
		print out
	}'
}

# One managed line for this home's key: the line tagged T_TAG (its last
# field), or an untagged line with the same key (pasted by hand from an
# older server-setup), is replaced in place; lines of other keys, and of
# other homes (another tunnels: tag), are never touched.
t_keys() {
	T_KEYS=$(t_keys_path)
	_dir=$(dirname "$T_KEYS")
	case $T_KEYS in
	"$T_HOMEDIR"/*)
		_owner="$T_USER:$(id -gn "$T_USER")"
		_mode=600
		if [ ! -d "$_dir" ]; then
			install -d -m 700 -o "$T_UID" -g "$T_GID" "$_dir"
			t_note "$_dir: created"
		fi ;;
	*)
		_owner=root:root
		_mode=644
		mkdir -p "$_dir" ;;
	esac
	if [ -f "$T_KEYS" ]; then
		cp "$T_KEYS" "$WORK/keys.old"
	else
		: >"$WORK/keys.old"
	fi
	_had=$(TAG=$T_TAG awk '$NF == ENVIRON["TAG"] { n++ } END { print n + 0 }' \
	    "$WORK/keys.old")
	TAG=$T_TAG BLOB=$T_KEYBLOB LINE="$WORK/key.line" awk '
	BEGIN {
		tag = ENVIRON["TAG"]; blob = ENVIRON["BLOB"]
		getline line < ENVIRON["LINE"]
	}
	{
		ours = ($NF == tag)
		if (!ours && $NF !~ /^tunnels:/)
			for (i = 1; i < NF; i++)
				if ($i == blob) { ours = 1; break }
		if (ours) {
			if (!done) print line
			done = 1
			next
		}
		print
	}
	END { if (!done) print line }' "$WORK/keys.old" >"$WORK/keys.new"
	t_put keys "$WORK/keys.new" "$T_KEYS" "$_mode" "$_owner"
	if [ "$T_CHANGED" = 1 ]; then
		if [ "$_had" -gt 0 ]; then
			t_note "$T_KEYS: the key line of $T_TAG replaced"
		else
			t_note "$T_KEYS: the key line of $T_TAG added"
		fi
	fi
}

# ---- sshd

t_reload_sshd() {
	if t_systemd; then
		for _u in ssh sshd; do
			if systemctl is-active --quiet "$_u.service"; then
				systemctl reload "$_u.service"
				t_note "sshd: reloaded ($_u.service)"
				return 0
			fi
		done
		if systemctl is-active --quiet ssh.socket; then
			t_note "sshd: socket-activated; each connection reads the new settings"
			return 0
		fi
	fi
	if [ -r /run/sshd.pid ] && kill -HUP "$(cat /run/sshd.pid)" 2>/dev/null; then
		t_note "sshd: reloaded (SIGHUP)"
		return 0
	fi
	t_note "sshd: not running; it reads the new settings when it starts"
}

# Where the Match block for the account goes: a drop-in in
# sshd_config.d when the main file includes that directory (Debian's
# does, at its top, so the drop-in's settings come first), else a managed
# block at the end of sshd_config, between BEGIN and END lines naming
# T_TAG. Refuses, before anything is changed, an account another home's
# block already names: sshd takes the first Match, so two homes cannot
# share one account.
t_sshd_where() {
	T_SSHD_MAIN=/etc/ssh/sshd_config
	[ -f "$T_SSHD_MAIN" ] || t_die "$T_SSHD_MAIN does not exist: is openssh-server installed?"
	if grep -Eiq '^[[:space:]]*Include[[:space:]]+(/etc/ssh/)?sshd_config\.d/\*\.conf([[:space:]]|$)' "$T_SSHD_MAIN"; then
		T_SSHD_FILE=/etc/ssh/sshd_config.d/$T_STEM.conf
		for _f in /etc/ssh/sshd_config.d/tunnels-*.conf; do
			[ "$_f" != "$T_SSHD_FILE" ] || continue
			if [ -f "$_f" ] && grep -qx "Match User $T_USER" "$_f"; then
				t_die "account $T_USER is already set up by $_f (another home, or a renamed server); give this home its own user: in the server entry, or remove that file"
			fi
		done
	else
		T_SSHD_FILE=$T_SSHD_MAIN
		if awk -v u="Match User $T_USER" -v me="# BEGIN $T_TAG " '
		    index($0, "# BEGIN tunnels:") == 1 { other = index($0, me) != 1 }
		    /^# END tunnels:/ { other = 0 }
		    other && $0 == u { found = 1 }
		    END { exit !found }' "$T_SSHD_MAIN"; then
			t_die "account $T_USER is already set up by another home's block in $T_SSHD_MAIN; give this home its own user: in the server entry"
		fi
	fi
}

# The Match block, written where t_sshd_where said; sshd -t, reload.
t_sshd() {
	_main=$T_SSHD_MAIN
	_file=$T_SSHD_FILE
	if [ "$_file" != "$_main" ]; then
		mkdir -p /etc/ssh/sshd_config.d
		{
			printf '# Managed by tunnels server-setup --script for %s; replaced on every run:\n' "$T_TAG"
			printf '# change tunnels.yaml at home and run the script again.\n'
			cat "$WORK/sshd.block"
		} >"$WORK/sshd.new"
		_mode=644
	else
		_mode=$(stat -c %a "$_main")
		{
			printf '# BEGIN %s (managed by tunnels server-setup --script; replaced on every run)\n' "$T_TAG"
			cat "$WORK/sshd.block"
			printf '# END %s\n' "$T_TAG"
		} >"$WORK/sshd.managed"
		B="# BEGIN $T_TAG " E="# END $T_TAG" M="$WORK/sshd.managed" awk '
		function block() { while ((getline l < ENVIRON["M"]) > 0) print l }
		index($0, ENVIRON["B"]) == 1 { skip = 1; if (!done) block(); done = 1; next }
		skip && $0 == ENVIRON["E"] { skip = 0; next }
		!skip { print }
		END { if (!done) block() }' "$_main" >"$WORK/sshd.new"
	fi
	t_put sshd "$WORK/sshd.new" "$_file" "$_mode" root:root
	[ "$T_CHANGED" = 1 ] || return 0
	if ! sshd -t >"$WORK/sshd-t.out" 2>&1; then
		cat "$WORK/sshd-t.out"
		t_rollback sshd
		t_rollback keys
		t_die "sshd -t refused the new settings (above); the previous files are back in place and sshd was not reloaded"
	fi
	t_note "$_file: written (sshd -t passed)"
	t_reload_sshd
}

# ---- nginx

t_reload_nginx() {
	if t_systemd; then
		if systemctl is-active --quiet nginx.service; then
			systemctl reload nginx.service
			t_note "nginx: reloaded"
		else
			systemctl start nginx.service
			t_note "nginx: started"
		fi
		return 0
	fi
	if [ -s /run/nginx.pid ]; then
		nginx -s reload
		t_note "nginx: reloaded"
	else
		nginx
		t_note "nginx: started"
	fi
}

# Write the home's site file (and the shared catch-all); nginx -t, reload.
t_nginx_apply() {
	_any=0
	# Shared by every home: replaced only when it is ours (generated).
	_def=/etc/nginx/conf.d/00-tunnels-default.conf
	if [ -e "$_def" ] && ! head -n 1 "$_def" | grep -q '^# Generated by tunnels '; then
		t_note "$_def: not generated by tunnels, left alone"
	else
		t_put nginx "$WORK/nginx.default" "$_def" 644 root:root
		if [ "$T_CHANGED" = 1 ]; then
			t_note "$_def: written"
			_any=1
		fi
	fi
	t_nginx_site >"$WORK/nginx.site"
	t_put nginx "$WORK/nginx.site" "$T_NGINX_FILE" 644 root:root
	if [ "$T_CHANGED" = 1 ]; then
		t_note "$T_NGINX_FILE: written"
		_any=1
	fi
	[ "$_any" = 1 ] || return 0
	if ! nginx -t >"$WORK/nginx-t.out" 2>&1; then
		cat "$WORK/nginx-t.out"
		t_rollback nginx
		t_die "nginx -t refused the new files (above); the previous files are back in place and nginx was not reloaded"
	fi
	rm -f "$WORK/restore.nginx"
	t_reload_nginx
}

t_webroot() {
	if [ ! -d "$1" ]; then
		mkdir -p "$1"
		t_note "$1: created (ACME webroot)"
	fi
}

# t_cert TUNNEL CERT WEBROOT CERTNAME COMMAND DOMAIN...: get a missing
# letsencrypt certificate over the webroot the port-80 block serves, when
# certbot is installed and an account exists or an email was given; else
# say which command to run.
t_cert() {
	_t=$1 _cert=$2 _root=$3 _name=$4 _cmd=$5
	shift 5
	[ ! -e "$_cert" ] || return 0
	if ! command -v certbot >/dev/null 2>&1; then
		t_note "tunnel $_t: no certificate yet and certbot is not installed: apt-get install certbot, then run: $_cmd (or this script again with --email)"
		T_PENDING=1
		return 0
	fi
	set -- --non-interactive certonly --webroot -w "$_root" \
	    --cert-name "$_name" --deploy-hook "systemctl reload nginx" "$@"
	if [ -n "$T_EMAIL" ]; then
		set -- "$@" --agree-tos --email "$T_EMAIL"
	elif ! find /etc/letsencrypt/accounts -name regr.json 2>/dev/null | grep -q .; then
		t_note "tunnel $_t: no certificate yet and no certbot account: run $_cmd (or this script again with --email ADDRESS)"
		T_PENDING=1
		return 0
	fi
	if certbot "$@"; then
		t_note "tunnel $_t: certificate $_name obtained"
		T_GOT=1
	else
		t_note "tunnel $_t: certbot failed (above); until it succeeds only the ACME challenge is served: fix it and run the script again, or run $_cmd"
		T_PENDING=1
	fi
}

# t_cert_manual, arguments as t_cert: a wildcard needs the DNS challenge,
# which only the admin can answer.
t_cert_manual() {
	[ ! -e "$2" ] || return 0
	t_note "tunnel $1: wildcard names need the DNS-01 challenge: run $5"
	T_PENDING=1
}

t_nginx() {
	if ! command -v nginx >/dev/null 2>&1; then
		if [ "$T_NGINX" = 1 ]; then
			t_die "nginx is not installed and tunnels of this home have an nginx: section: apt-get install nginx"
		fi
		return 0
	fi
	# Nothing to serve and nothing served before: leave nginx alone.
	if [ "$T_NGINX" = 0 ] && [ ! -e "$T_NGINX_FILE" ]; then
		return 0
	fi
	[ -d /etc/nginx/conf.d ] || t_die "/etc/nginx/conf.d does not exist"
	grep -Eqs '^[^#]*include[[:space:]]+/etc/nginx/conf\.d/\*\.conf' /etc/nginx/nginx.conf ||
	    t_note "warning: /etc/nginx/nginx.conf does not seem to include /etc/nginx/conf.d/*.conf"
	t_webroots
	t_nginx_apply
	T_GOT=0
	t_certs
	# New certificates: the https blocks replace the pending ones.
	if [ "$T_GOT" = 1 ]; then
		t_nginx_apply
	fi
}

# ---- the result

t_hostkeys() {
	sshd -T 2>/dev/null | awk '$1 == "hostkey" { print $2 }' >"$WORK/hostkeys"
	if [ ! -s "$WORK/hostkeys" ]; then
		ls /etc/ssh/ssh_host_*_key >"$WORK/hostkeys" 2>/dev/null || true
	fi
	while IFS= read -r _k; do
		[ -r "$_k.pub" ] || continue
		HS=$T_HOSTSPEC awk 'NF >= 2 { print ENVIRON["HS"], $1, $2; exit }' "$_k.pub"
	done <"$WORK/hostkeys"
}

t_main() {
	[ "$(id -u)" = 0 ] || t_die "run this as root on the server, e.g.: tunnels server-setup --script | ssh root@SERVER sh"
	command -v sshd >/dev/null 2>&1 || t_die "sshd is not installed: apt-get install openssh-server"
	_tmp=${TMPDIR:-/tmp}
	[ -d "$_tmp" ] || _tmp=/tmp
	WORK=$(mktemp -d "$_tmp/tunnels-setup.XXXXXX")
	t_data
	t_sshd_where
	t_account
	t_keys
	t_sshd
	t_nginx
	if [ -n "$T_NOTES" ]; then
		t_say "$T_TAG: account $T_USER on $(uname -n):"
		printf '%s' "$T_NOTES"
	else
		t_say "$T_TAG: account $T_USER on $(uname -n): nothing changed"
	fi
	if [ "$T_PENDING" = 1 ]; then
		t_say "not finished: a certificate is missing (see above); until it exists its names answer only the ACME challenge"
	fi
	t_say "the host keys of this server, as known_hosts lines, are on standard output"
}

umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
trap t_cleanup EXIT
trap 'exit 1' HUP INT TERM
t_main >&2
t_hostkeys
