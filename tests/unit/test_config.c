/*
 * Unit tests for config.c: a table of broken configurations with the
 * exact `tunnels check` output each must produce, good configurations
 * checked field by field, and the filesystem checks on real temp files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

/* A valid server block, lines 1-6; tunnels: then starts at line 7. */
#define BASE \
	"servers:\n" \
	"  vps:\n" \
	"    host: h\n" \
	"    user: u\n" \
	"    identity: /id\n" \
	"    known_hosts: /kh\n"

/* The head of a tunnel "blog" on vps, lines 7-10 after BASE. */
#define BLOG \
	"tunnels:\n" \
	"  - name: blog\n" \
	"    remote: 4001\n" \
	"    local: 1313\n"

#define ED25519_PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMjt+qbhbNsrxH/" \
	"iyxHtr1kUTQekuwVZyWL5cvgbR1px"

#define CHECK_MSG "expected a mapping with \"servers\" and \"tunnels\""

/* One broken input and the complete output of config_errors_print. */
struct config_case {
	const char	*name;
	const char	*yaml;
	const char	*want;
};

static const struct config_case config_bad[] = {
	/* YAML syntax. */
	{ "syntax",
	  "servers:\n  vps: a: b\n",
	  "t.yaml:2:9: YAML syntax error: mapping values are not allowed in "
	  "this context\n" },
	{ "syntax with context",
	  BASE "tunnels:\n  - name: x\n    remote: 1\n  local: 2\n",
	  "t.yaml:10:3: YAML syntax error: did not find expected '-' "
	  "indicator (while parsing a block collection at line 8)\n" },
	{ "tab indentation",
	  "servers:\n\tvps:\n",
	  "t.yaml:2:1: YAML syntax error: found character that cannot start "
	  "any token (tabs are not allowed for indentation)\n" },
	{ "unterminated quote",
	  "servers:\n  vps:\n    host: \"abc\n    user: b\n",
	  "t.yaml:5:1: YAML syntax error: found unexpected end of stream "
	  "(while scanning a quoted scalar at line 3)\n" },
	{ "undefined alias",
	  "servers: *x\n",
	  "t.yaml:1:10: YAML syntax error: found undefined alias\n" },

	/* Document shape. */
	{ "empty file", "",
	  "t.yaml: empty configuration: " CHECK_MSG "\n" },
	{ "only comments", "# nothing here\n\n",
	  "t.yaml: empty configuration: " CHECK_MSG "\n" },
	{ "null document", "---\n",
	  "t.yaml: empty configuration: " CHECK_MSG "\n" },
	{ "scalar root", "hello\n",
	  "t.yaml:1:1: the configuration must be a mapping with \"servers\" "
	  "and \"tunnels\"\n" },
	{ "list root", "- a\n",
	  "t.yaml:1:1: the configuration must be a mapping with \"servers\" "
	  "and \"tunnels\"\n" },
	{ "two documents",
	  BASE "---\ntunnels: []\n",
	  "t.yaml:8:1: more than one YAML document; the configuration must "
	  "be a single document\n" },
	{ "key not a string",
	  "? [a]\n: b\n",
	  "t.yaml:1:3: keys must be plain strings\n" },

	/* Unknown and duplicate keys. */
	{ "unknown server key with suggestion",
	  "servers:\n  vps:\n    hots: h\n    user: u\n    identity: /id\n"
	  "    known_hosts: /kh\n",
	  "t.yaml:2:3: server \"vps\" is missing required key \"host\"\n"
	  "t.yaml:3:5: unknown key \"hots\" in server \"vps\" (did you mean "
	  "\"host\"?)\n" },
	{ "unknown top-level key with suggestion",
	  BASE "tunnel: []\n",
	  "t.yaml:7:1: unknown key \"tunnel\" at top level (did you mean "
	  "\"tunnels\"?)\n" },
	{ "unknown key without suggestion",
	  BASE "colour: red\n",
	  "t.yaml:7:1: unknown key \"colour\" at top level\n" },
	{ "unknown tunnel key",
	  BASE "tunnels:\n  - name: blog\n    remote: 4001\n"
	  "    locale: 1313\n",
	  "t.yaml:8:5: tunnel \"blog\" is missing required key \"local\"\n"
	  "t.yaml:10:5: unknown key \"locale\" in tunnel \"blog\" (did you "
	  "mean \"local\"?)\n" },
	{ "unknown nginx key",
	  BASE BLOG "    nginx:\n      server_name: a.example.com\n"
	  "      websockets: true\n",
	  "t.yaml:13:7: unknown key \"websockets\" in nginx section of tunnel "
	  "\"blog\" (did you mean \"websocket\"?)\n" },
	{ "unknown backoff key",
	  BASE "backoff:\n  intial: 2s\n",
	  "t.yaml:8:3: unknown key \"intial\" in backoff (did you mean "
	  "\"initial\"?)\n" },
	{ "duplicate key",
	  "servers:\n  vps:\n    host: h\n    user: u\n    host: h2\n"
	  "    identity: /id\n    known_hosts: /kh\n",
	  "t.yaml:5:5: duplicate key \"host\" in server \"vps\" (first at line "
	  "3)\n" },
	{ "duplicate top-level key",
	  BASE "servers: {}\n",
	  "t.yaml:7:1: duplicate key \"servers\" at top level (first at line "
	  "1)\n" },
	{ "duplicate server name",
	  "servers:\n"
	  "  vps: {host: h, user: u, identity: /id, known_hosts: /kh}\n"
	  "  vps: {host: h, user: u, identity: /id, known_hosts: /kh}\n",
	  "t.yaml:3:3: duplicate server name \"vps\" (first defined at line "
	  "2)\n" },

	/* Wrong types and values. */
	{ "wrong scalar types",
	  "servers:\n  vps:\n    host: h\n    port: abc\n    user: [u]\n"
	  "    identity: /id\n    known_hosts: /kh\n"
	  "    keepalive_count: 0\n    reclaim_stale_port: maybe\n"
	  "    connect_timeout: {a: 1}\n",
	  "t.yaml:4:11: \"port\" must be an integer\n"
	  "t.yaml:5:11: \"user\" must be a string\n"
	  "t.yaml:8:22: \"keepalive_count\" must be at least 1\n"
	  "t.yaml:9:25: \"reclaim_stale_port\" must be true or false\n"
	  "t.yaml:10:22: \"connect_timeout\" must be a duration such as "
	  "10s\n" },
	{ "empty strings",
	  "servers:\n  vps:\n    host:\n    user: \"\"\n    identity: /id\n"
	  "    known_hosts: /kh\n",
	  "t.yaml:3:10: \"host\" must not be empty\n"
	  "t.yaml:4:11: \"user\" must not be empty\n" },
	{ "invalid host",
	  "servers:\n  vps:\n    host: foo bar\n    user: u\n"
	  "    identity: /id\n    known_hosts: /kh\n",
	  "t.yaml:3:11: invalid host \"foo bar\": expected a host name or an "
	  "IP address (IPv6 without brackets)\n" },
	{ "servers is a list",
	  "servers: [a]\n",
	  "t.yaml:1:10: \"servers\" must be a mapping of server names\n" },
	{ "server is a scalar",
	  "servers:\n  vps: 5\n",
	  "t.yaml:2:8: server \"vps\" must be a mapping with host, user, "
	  "identity ...\n" },
	{ "tunnels is a mapping",
	  BASE "tunnels:\n  blog: 1\n",
	  "t.yaml:8:3: \"tunnels\" must be a list (start each tunnel with "
	  "\"- name: ...\")\n" },
	{ "tunnels is a scalar",
	  BASE "tunnels: 5\n",
	  "t.yaml:7:10: \"tunnels\" must be a list\n" },
	{ "tunnel item is a scalar",
	  BASE "tunnels:\n  - blog\n",
	  "t.yaml:8:5: tunnel #1 must be a mapping with name, remote and "
	  "local\n" },
	{ "backoff is a scalar",
	  "backoff: 5\n",
	  "t.yaml:1:10: \"backoff\" must be a mapping with initial and max\n" },
	{ "remote is a list",
	  BASE "tunnels:\n  - name: blog\n    remote: [4001]\n    local: 1\n",
	  "t.yaml:9:13: \"remote\" must be a port or an address such as "
	  "\"127.0.0.1:4001\" (quote addresses with brackets)\n" },
	{ "name is a list",
	  BASE "tunnels:\n  - name: [blog]\n    remote: 4001\n    local: 1\n",
	  "t.yaml:8:11: \"name\" must be a string\n" },

	/* Ports. */
	{ "server port out of range",
	  "servers:\n  vps:\n    host: h\n    port: 70000\n    user: u\n"
	  "    identity: /id\n    known_hosts: /kh\n",
	  "t.yaml:4:11: port 70000 out of range (1-65535)\n" },
	{ "server port zero",
	  "servers:\n  vps:\n    host: h\n    port: 0\n    user: u\n"
	  "    identity: /id\n    known_hosts: /kh\n",
	  "t.yaml:4:11: port 0 out of range (1-65535)\n" },
	{ "tunnel ports out of range",
	  BASE "tunnels:\n  - {name: a, remote: 70000, local: 0}\n",
	  "t.yaml:8:23: port 70000 out of range (0-65535)\n"
	  "t.yaml:8:37: port 0 out of range (1-65535)\n" },

	/* Addresses. */
	{ "remote unix socket",
	  BASE "tunnels:\n  - name: blog\n    remote: unix:/run/x.sock\n"
	  "    local: unix:rel.sock\n",
	  "t.yaml:9:13: \"remote\" cannot be a unix socket: libssh2 can only "
	  "request TCP forwards (tcpip-forward), not unix-socket forwards "
	  "(streamlocal-forward)\n"
	  "t.yaml:10:12: unix socket path \"rel.sock\" must be absolute\n" },
	{ "bare IPv6",
	  BASE "tunnels:\n  - name: blog\n    remote: \"::1:4001\"\n"
	  "    local: x\n",
	  "t.yaml:9:13: invalid address \"::1:4001\": put an IPv6 address in "
	  "brackets, e.g. \"[::1]:4001\"\n"
	  "t.yaml:10:12: invalid address \"x\": expected PORT, HOST:PORT or "
	  "[IPV6]:PORT\n" },

	/* Names. */
	{ "invalid names",
	  "servers:\n  VPS:\n    host: h\n    user: u\n    identity: /id\n"
	  "    known_hosts: /kh\n"
	  "tunnels:\n  - name: Blog\n    server: VPS\n    remote: 1\n"
	  "    local: 2\n"
	  "  - name: abcdefghijklmnopqrstuvwxyz0123456\n    remote: 3\n"
	  "    local: 4\n",
	  "t.yaml:2:3: invalid server name \"VPS\": use 1-32 characters from "
	  "a-z, 0-9, \"_\" and \"-\"\n"
	  "t.yaml:8:11: invalid tunnel name \"Blog\": use 1-32 characters "
	  "from a-z, 0-9, \"_\" and \"-\"\n"
	  "t.yaml:12:11: invalid tunnel name "
	  "\"abcdefghijklmnopqrstuvwxyz0123456\": use 1-32 characters from "
	  "a-z, 0-9, \"_\" and \"-\"\n" },
	{ "tunnel without name",
	  BASE "tunnels:\n  - remote: 4001\n    local: 1\n",
	  "t.yaml:8:5: tunnel #1 is missing required key \"name\"\n" },
	{ "duplicate tunnel name",
	  BASE BLOG "  - name: blog\n    remote: 4002\n    local: 1314\n",
	  "t.yaml:11:11: duplicate tunnel name \"blog\" (first defined at "
	  "line 8)\n" },

	/* Servers of tunnels. */
	{ "unknown server",
	  BASE "tunnels:\n  - name: blog\n    server: vsp\n    remote: 4001\n"
	  "    local: 1313\n",
	  "t.yaml:9:13: tunnel \"blog\" names unknown server \"vsp\" (known: "
	  "vps)\n" },
	{ "unknown server, none defined",
	  "tunnels:\n  - name: blog\n    server: vps\n    remote: 4001\n"
	  "    local: 1313\n",
	  "t.yaml:3:13: tunnel \"blog\" names unknown server \"vps\" (no "
	  "servers are defined)\n" },
	{ "server omitted, none defined",
	  "tunnels:\n  - name: blog\n    remote: 4001\n    local: 1313\n",
	  "t.yaml:2:5: tunnel \"blog\" has no \"server\" and no servers are "
	  "defined\n" },
	{ "server omitted, several defined",
	  "servers:\n"
	  "  a: {host: h, user: u, identity: /id, known_hosts: /kh}\n"
	  "  b: {host: h, user: u, identity: /id, known_hosts: /kh}\n"
	  "tunnels:\n  - name: blog\n    remote: 4001\n    local: 1313\n",
	  "t.yaml:5:5: tunnel \"blog\" must name its server with \"server:\" "
	  "when several are defined (a, b)\n" },

	/* Remote conflicts. */
	{ "duplicate remote",
	  BASE "tunnels:\n  - name: a\n    remote: 4001\n    local: 1\n"
	  "  - name: b\n    remote: \"127.0.0.1:4001\"\n    local: 2\n",
	  "t.yaml:12:13: tunnel \"b\" uses remote 127.0.0.1:4001 on server "
	  "\"vps\" already used by tunnel \"a\"\n" },
	{ "overlapping remote",
	  BASE "tunnels:\n  - name: a\n    remote: 4001\n    local: 1\n"
	  "  - name: b\n    remote: 0.0.0.0:4001\n    local: 2\n",
	  "t.yaml:12:13: tunnel \"b\" uses remote 0.0.0.0:4001 on server "
	  "\"vps\", which overlaps 127.0.0.1:4001 of tunnel \"a\"\n" },

	/* Missing keys. */
	{ "server missing user",
	  "servers:\n  vps:\n    host: h\n    identity: /id\n"
	  "    known_hosts: /kh\n",
	  "t.yaml:2:3: server \"vps\" is missing required key \"user\"\n" },
	{ "empty server",
	  "servers:\n  vps:\n",
	  "t.yaml:2:3: server \"vps\" is missing required key \"host\"\n"
	  "t.yaml:2:3: server \"vps\" is missing required key \"user\"\n"
	  "t.yaml:2:3: server \"vps\" is missing required key \"identity\"\n"
	  "t.yaml:2:3: server \"vps\" needs known_hosts or host_key\n" },
	{ "tunnel missing remote and local",
	  BASE "tunnels:\n  - name: blog\n",
	  "t.yaml:8:5: tunnel \"blog\" is missing required key \"remote\"\n"
	  "t.yaml:8:5: tunnel \"blog\" is missing required key \"local\"\n" },

	/* Durations. */
	{ "bad durations",
	  BASE "    keepalive: 10\n    connect_timeout: -5s\n"
	  "backoff:\n  initial: 10x\n  max: 1.5s\n",
	  "t.yaml:7:16: duration \"10\" needs a unit (ms, s, m or h)\n"
	  "t.yaml:8:22: duration \"-5s\" must not be negative\n"
	  "t.yaml:10:12: invalid duration \"10x\": expected a number and a "
	  "unit (ms, s, m or h), e.g. 10s\n"
	  "t.yaml:11:8: invalid duration \"1.5s\": expected a number and a "
	  "unit (ms, s, m or h), e.g. 10s\n" },
	{ "zero and huge durations",
	  BASE "    keepalive: 0s\n    connect_timeout: 9223372036854775807h\n"
	  "    keepalive_count: 99999999999\n",
	  "t.yaml:7:16: \"keepalive\" must be greater than 0\n"
	  "t.yaml:8:22: duration \"9223372036854775807h\" is too large\n"
	  "t.yaml:9:22: \"keepalive_count\" must be at most 100 (got "
	  "99999999999)\n" },
	/* Each fits an int64_t; the daemon would add and multiply them. */
	{ "durations and counts over the caps",
	  BASE "    keepalive: 9223372036854775807ms\n"
	  "    connect_timeout: 1441m\n    keepalive_count: 101\n"
	  "backoff: {initial: 86400001ms, max: 25h}\n",
	  "t.yaml:7:16: \"keepalive\" must be at most 24h (got "
	  "9223372036854775807ms)\n"
	  "t.yaml:8:22: \"connect_timeout\" must be at most 24h (got 1441m)\n"
	  "t.yaml:9:22: \"keepalive_count\" must be at most 100 (got 101)\n"
	  "t.yaml:10:20: \"initial\" must be at most 24h (got 86400001ms)\n"
	  "t.yaml:10:37: \"max\" must be at most 24h (got 25h)\n" },
	{ "backoff initial above max",
	  "backoff:\n  initial: 2m\n  max: 1m\n",
	  "t.yaml:2:12: backoff initial (2m) is greater than max (1m)\n" },
	{ "backoff max below default initial",
	  "backoff:\n  max: 500ms\n",
	  "t.yaml:2:8: backoff initial (1s) is greater than max (500ms)\n" },

	/* nginx. */
	{ "bad server names",
	  BASE BLOG "    nginx:\n      server_name:\n"
	  "        - blog.example.com\n        - bad_name\n"
	  "        - a.*.example.com\n        - -x.example.com\n"
	  "        - \"*.example.com\"\n        - Blog.Example.COM\n",
	  "t.yaml:14:11: invalid server_name \"bad_name\": expected a DNS "
	  "name such as blog.example.com or *.example.com\n"
	  "t.yaml:15:11: invalid server_name \"a.*.example.com\": expected a "
	  "DNS name such as blog.example.com or *.example.com\n"
	  "t.yaml:16:11: invalid server_name \"-x.example.com\": expected a "
	  "DNS name such as blog.example.com or *.example.com\n"
	  "t.yaml:18:11: server_name \"blog.example.com\" is listed twice\n" },
	{ "bad nginx values",
	  BASE BLOG "    nginx:\n      server_name: []\n      tls: on\n"
	  "      client_max_body_size: 10mb\n      websocket: maybe\n"
	  "      acme_webroot: www\n",
	  "t.yaml:12:20: \"server_name\" must list at least one name\n"
	  "t.yaml:13:12: \"tls\" must be off, letsencrypt or a mapping with "
	  "cert and key\n"
	  "t.yaml:14:29: invalid client_max_body_size \"10mb\": expected a "
	  "size such as 512k, 10m, 1g or 0\n"
	  "t.yaml:15:18: \"websocket\" must be true or false\n"
	  "t.yaml:16:21: \"acme_webroot\" must be an absolute path (it is a "
	  "path on the server that runs nginx)\n" },
	{ "tls files incomplete",
	  BASE BLOG "    nginx:\n      server_name: blog.example.com\n"
	  "      tls:\n        cert: fullchain.pem\n",
	  "t.yaml:13:7: tls section of tunnel \"blog\" is missing required "
	  "key \"key\"\n"
	  "t.yaml:14:15: \"cert\" must be an absolute path (it is a path on "
	  "the server that runs nginx)\n" },
	{ "nginx without server_name",
	  BASE BLOG "    nginx: {tls: off}\n",
	  "t.yaml:11:5: nginx section of tunnel \"blog\" is missing required "
	  "key \"server_name\"\n" },
	{ "nginx is a scalar",
	  BASE BLOG "    nginx: yes\n",
	  "t.yaml:11:12: \"nginx\" must be a mapping with server_name, "
	  "tls ...\n" },
	{ "server_name repeated in and across tunnels",
	  BASE "tunnels:\n"
	  "  - {name: a, remote: 1, local: 1, nginx: {server_name: [x.e, y.e, "
	  "x.e]}}\n"
	  "  - {name: b, remote: 2, local: 1, nginx: {server_name: [y.e, z.e, "
	  "Y.e, x.e]}}\n"
	  "  - {name: c, remote: 3, local: 1, nginx: {server_name: z.e}}\n",
	  "t.yaml:8:68: server_name \"x.e\" is listed twice\n"
	  "t.yaml:9:58: server_name \"y.e\" is already used by tunnel \"a\"\n"
	  "t.yaml:9:68: server_name \"y.e\" is listed twice\n"
	  "t.yaml:9:73: server_name \"x.e\" is already used by tunnel \"a\"\n"
	  "t.yaml:10:57: server_name \"z.e\" is already used by tunnel "
	  "\"b\"\n" },
	{ "server_name used twice",
	  BASE "tunnels:\n  - name: a\n    remote: 4001\n    local: 1\n"
	  "    nginx: {server_name: [x.example.com, y.example.com]}\n"
	  "  - name: b\n    remote: 4002\n    local: 2\n"
	  "    nginx: {server_name: Y.example.com}\n",
	  "t.yaml:15:26: server_name \"y.example.com\" is already used by "
	  "tunnel \"a\"\n" },

	/* Paths and host keys. */
	{ "tilde and variables",
	  "servers:\n  vps:\n    host: h\n    user: u\n"
	  "    identity: ~/.ssh/id_ed25519\n    known_hosts: ${HOME}/kh\n",
	  "t.yaml:5:15: \"identity\": path \"~/.ssh/id_ed25519\" starts with "
	  "\"~\", which is not expanded (systemd sets no HOME for system "
	  "services); use an absolute path\n"
	  "t.yaml:6:18: \"known_hosts\": path \"${HOME}/kh\" contains a "
	  "variable, which is not expanded; use a literal path\n" },
	{ "neither known_hosts nor host_key",
	  "servers:\n  vps:\n    host: h\n    user: u\n    identity: /id\n",
	  "t.yaml:2:3: server \"vps\" needs known_hosts or host_key\n" },
	{ "both known_hosts and host_key",
	  BASE "    host_key: \"" ED25519_PUB "\"\n",
	  "t.yaml:7:15: server \"vps\" has both known_hosts and host_key; "
	  "keep only one\n" },
	{ "bad host keys",
	  "servers:\n"
	  "  a: {host: h, user: u, identity: /id, host_key: \"ssh-dss AAAA\"}\n"
	  "  b: {host: h, user: u, identity: /id, host_key: \"h ssh-rsa A\"}\n"
	  "  c: {host: h, user: u, identity: /id, host_key: [x]}\n",
	  "t.yaml:2:50: invalid host_key: key type \"ssh-dss\" is not "
	  "supported (use ssh-ed25519, ecdsa-sha2-nistp256, "
	  "ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa)\n"
	  "t.yaml:3:50: invalid host_key: expected \"TYPE BASE64\": remove "
	  "the host name \"h\" in front\n"
	  "t.yaml:4:50: \"host_key\" must be a string \"TYPE BASE64\"\n" },
};

/* Parse text (no file checks) and return config_errors_print's output. */
static char *
config_test_errors(const char *yaml, struct config **cfgp)
{
	struct config_errors	 errs;
	struct config		*cfg;
	char			*out = NULL;
	size_t			 len = 0;
	FILE			*fp;

	memset(&errs, 0, sizeof errs);
	cfg = config_parse("t.yaml", yaml, strlen(yaml), 0, &errs);
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	config_errors_print(&errs, fp);
	fclose(fp);
	if (cfg != NULL)
		assert_int_equal(errs.n, 0);
	config_errors_clear(&errs);
	*cfgp = cfg;
	return out;
}

/* Every broken input gives exactly its expected lines and no config. */
static void
test_config_bad_table(void **state)
{
	const struct config_case	*c;
	struct config			*cfg;
	char				*out;
	size_t				 i;
	int				 bad = 0;

	(void)state;
	for (i = 0; i < sizeof config_bad / sizeof config_bad[0]; i++) {
		c = &config_bad[i];
		out = config_test_errors(c->yaml, &cfg);
		if (cfg != NULL || strcmp(out, c->want) != 0) {
			print_error("case \"%s\":\n--- want\n%s--- got%s\n%s",
			    c->name, c->want, cfg != NULL ? " a config" : "",
			    out);
			bad++;
		}
		config_free(cfg);
		free(out);
	}
	assert_int_equal(bad, 0);
}

/* One file with many mistakes: all are reported, in file order. */
static void
test_config_all_errors(void **state)
{
	static const char yaml[] =
	    "control: ~/ctl\n"				/* 1 */
	    "servers:\n"
	    "  vps:\n"
	    "    hots: proxy.example.com\n"
	    "    port: 70000\n"				/* 5 */
	    "    user: tunnel\n"
	    "    identity: /etc/tunnels/id\n"
	    "  home:\n"
	    "    host: home.example.com\n"
	    "    user: u\n"					/* 10 */
	    "    identity: /id\n"
	    "    known_hosts: /kh\n"
	    "    keepalive: 10\n"
	    "tunnels:\n"
	    "  - name: blog\n"				/* 15 */
	    "    server: vsp\n"
	    "    remote: 4001\n"
	    "    local: 1313\n"
	    "  - name: blog\n"
	    "    server: home\n"			/* 20 */
	    "    remote: 4001\n"
	    "    local: unix:/run/app.sock\n"
	    "  - name: git\n"
	    "    server: home\n"
	    "    remote: 4001\n"			/* 25 */
	    "    local: 3000\n"
	    "backoff:\n"
	    "  initial: 2m\n"
	    "  max: 1m\n";
	static const char want[] =
	    "t.yaml:1:10: \"control\": path \"~/ctl\" starts with \"~\", which "
	    "is not expanded (systemd sets no HOME for system services); use "
	    "an absolute path\n"
	    "t.yaml:3:3: server \"vps\" is missing required key \"host\"\n"
	    "t.yaml:3:3: server \"vps\" needs known_hosts or host_key\n"
	    "t.yaml:4:5: unknown key \"hots\" in server \"vps\" (did you mean "
	    "\"host\"?)\n"
	    "t.yaml:5:11: port 70000 out of range (1-65535)\n"
	    "t.yaml:13:16: duration \"10\" needs a unit (ms, s, m or h)\n"
	    "t.yaml:16:13: tunnel \"blog\" names unknown server \"vsp\" "
	    "(known: vps, home)\n"
	    "t.yaml:19:11: duplicate tunnel name \"blog\" (first defined at "
	    "line 15)\n"
	    "t.yaml:25:13: tunnel \"git\" uses remote 127.0.0.1:4001 on "
	    "server \"home\" already used by tunnel \"blog\"\n"
	    "t.yaml:28:12: backoff initial (2m) is greater than max (1m)\n";
	struct config	*cfg;
	char		*out;

	(void)state;
	out = config_test_errors(yaml, &cfg);
	assert_null(cfg);
	assert_string_equal(out, want);
	free(out);
}

/* Parse text that must be valid; fails the test with the errors. */
static struct config *
config_test_good(const char *path, const char *yaml)
{
	struct config_errors	 errs;
	struct config		*cfg;

	memset(&errs, 0, sizeof errs);
	cfg = config_parse(path, yaml, strlen(yaml), 0, &errs);
	if (cfg == NULL) {
		config_errors_print(&errs, stderr);
		config_errors_clear(&errs);
		fail_msg("valid configuration rejected");
	}
	assert_int_equal(errs.n, 0);
	config_errors_clear(&errs);
	return cfg;
}

/* The smallest useful config: every default, field by field. */
static void
test_config_minimal_defaults(void **state)
{
	const struct config_server	*s;
	const struct config_tunnel	*t;
	struct config			*cfg;

	(void)state;
	cfg = config_test_good("/etc/tunnels/tunnels.yaml",
	    BASE "tunnels:\n  - name: blog\n    remote: 4001\n"
	    "    local: 1313\n");
	assert_string_equal(cfg->path, "/etc/tunnels/tunnels.yaml");
	assert_string_equal(cfg->control, "/run/tunnels/control.sock");
	assert_string_equal(cfg->state_dir, "/var/lib/tunnels");
	assert_int_equal(cfg->backoff_initial_ms, 1000);
	assert_int_equal(cfg->backoff_max_ms, 60000);

	assert_int_equal(cfg->n_servers, 1);
	s = &cfg->servers[0];
	assert_string_equal(s->name, "vps");
	assert_string_equal(s->host, "h");
	assert_int_equal(s->port, 22);
	assert_string_equal(s->user, "u");
	assert_string_equal(s->identity, "/id");
	assert_null(s->passphrase_file);
	assert_string_equal(s->known_hosts, "/kh");
	assert_null(s->host_key);
	assert_int_equal(s->keepalive_ms, 10000);
	assert_int_equal(s->keepalive_count, 3);
	assert_int_equal(s->connect_timeout_ms, 10000);
	assert_int_equal(s->reclaim_stale_port, 1);
	assert_int_equal(s->line, 2);
	assert_int_equal(s->col, 3);

	assert_int_equal(cfg->n_tunnels, 1);
	t = &cfg->tunnels[0];
	assert_string_equal(t->name, "blog");
	assert_string_equal(t->server, "vps");	/* the only server */
	assert_int_equal(t->server_index, 0);
	assert_int_equal(t->remote.kind, ADDR_INET);
	assert_string_equal(t->remote.host, "127.0.0.1");
	assert_int_equal(t->remote.port, 4001);
	assert_int_equal(t->local.kind, ADDR_INET);
	assert_string_equal(t->local.host, "127.0.0.1");
	assert_int_equal(t->local.port, 1313);
	assert_null(t->nginx);
	assert_int_equal(t->line, 8);
	assert_int_equal(t->col, 5);

	assert_ptr_equal(config_server_find(cfg, "vps"), s);
	assert_null(config_server_find(cfg, "nope"));
	assert_ptr_equal(config_tunnel_find(cfg, "blog"), t);
	assert_null(config_tunnel_find(cfg, "nope"));
	config_free(cfg);
}

/* Every key given a non-default value. */
static const char config_full[] =
    "control: run/control.sock\n"
    "state_dir: /var/lib/t\n"
    "servers:\n"
    "  vps:\n"
    "    host: proxy.example.com\n"			/* 5 */
    "    port: 2222\n"
    "    user: tunnel\n"
    "    identity: /etc/tunnels/id_ed25519\n"
    "    passphrase_file: /etc/tunnels/pass\n"
    "    host_key: \"" ED25519_PUB "\"\n"		/* 10 */
    "    keepalive: 500ms\n"
    "    keepalive_count: 5\n"
    "    connect_timeout: 1m\n"
    "    reclaim_stale_port: no\n"
    "  home:\n"						/* 15 */
    "    host: \"::1\"\n"
    "    user: u\n"
    "    identity: keys/id\n"
    "    known_hosts: ./known_hosts\n"
    "    reclaim_stale_port: YES\n"			/* 20 */
    "tunnels:\n"
    "  - name: blog\n"
    "    server: vps\n"
    "    remote: \"[::1]:4001\"\n"
    "    local: unix:/run/app.sock\n"		/* 25 */
    "    nginx:\n"
    "      server_name: \"*.Example.com\"\n"
    "      tls: {cert: /etc/ssl/c.pem, key: /etc/ssl/k.pem}\n"
    "      websocket: false\n"
    "      client_max_body_size: 0\n"		/* 30 */
    "      acme_webroot: /srv/acme\n"
    "  - name: zero\n"
    "    server: home\n"
    "    remote: 0\n"
    "    local: \"localhost:8080\"\n"		/* 35 */
    "  - name: zero2\n"
    "    server: home\n"
    "    remote: 0\n"
    "    local: \"[::1]:8081\"\n"
    "    nginx:\n"					/* 40 */
    "      server_name: [a.example.com, b.example.com]\n"
    "      tls: letsencrypt\n"
    "backoff:\n"
    "  initial: 2s\n"
    "  max: 2h\n";

/* The full config: each value lands in its field. */
static void
test_config_full(void **state)
{
	const struct config_server	*s;
	const struct config_tunnel	*t;
	const struct config_nginx	*n;
	struct config			*cfg;

	(void)state;
	cfg = config_test_good("/etc/tunnels/tunnels.yaml", config_full);
	assert_string_equal(cfg->control, "/etc/tunnels/run/control.sock");
	assert_string_equal(cfg->state_dir, "/var/lib/t");
	assert_int_equal(cfg->backoff_initial_ms, 2000);
	assert_int_equal(cfg->backoff_max_ms, 2 * 3600 * 1000);

	assert_int_equal(cfg->n_servers, 2);
	s = &cfg->servers[0];
	assert_string_equal(s->name, "vps");
	assert_string_equal(s->host, "proxy.example.com");
	assert_int_equal(s->port, 2222);
	assert_string_equal(s->user, "tunnel");
	assert_string_equal(s->identity, "/etc/tunnels/id_ed25519");
	assert_string_equal(s->passphrase_file, "/etc/tunnels/pass");
	assert_null(s->known_hosts);
	assert_string_equal(s->host_key, ED25519_PUB);
	assert_int_equal(s->keepalive_ms, 500);
	assert_int_equal(s->keepalive_count, 5);
	assert_int_equal(s->connect_timeout_ms, 60000);
	assert_int_equal(s->reclaim_stale_port, 0);
	assert_int_equal(s->line, 4);
	assert_int_equal(s->col, 3);
	s = &cfg->servers[1];
	assert_string_equal(s->name, "home");
	assert_string_equal(s->host, "::1");
	assert_int_equal(s->port, 22);
	assert_string_equal(s->identity, "/etc/tunnels/keys/id");
	assert_string_equal(s->known_hosts, "/etc/tunnels/known_hosts");
	assert_null(s->host_key);
	assert_int_equal(s->reclaim_stale_port, 1);
	assert_int_equal(s->line, 15);

	assert_int_equal(cfg->n_tunnels, 3);
	t = &cfg->tunnels[0];
	assert_string_equal(t->name, "blog");
	assert_string_equal(t->server, "vps");
	assert_int_equal(t->server_index, 0);
	assert_int_equal(t->remote.kind, ADDR_INET);
	assert_string_equal(t->remote.host, "::1");
	assert_int_equal(t->remote.port, 4001);
	assert_int_equal(t->local.kind, ADDR_UNIX);
	assert_string_equal(t->local.host, "/run/app.sock");
	assert_int_equal(t->line, 22);
	n = t->nginx;
	assert_non_null(n);
	assert_int_equal(n->n_server_names, 1);
	assert_string_equal(n->server_names[0], "*.example.com");
	assert_int_equal(n->tls, CONFIG_TLS_FILES);
	assert_string_equal(n->cert, "/etc/ssl/c.pem");
	assert_string_equal(n->key, "/etc/ssl/k.pem");
	assert_int_equal(n->websocket, 0);
	assert_string_equal(n->client_max_body_size, "0");
	assert_string_equal(n->acme_webroot, "/srv/acme");
	assert_int_equal(n->line, 26);
	assert_int_equal(n->col, 5);

	t = &cfg->tunnels[1];
	assert_string_equal(t->server, "home");
	assert_int_equal(t->server_index, 1);
	assert_string_equal(t->remote.host, "127.0.0.1");
	assert_int_equal(t->remote.port, 0);
	assert_string_equal(t->local.host, "localhost");
	assert_int_equal(t->local.port, 8080);
	assert_null(t->nginx);

	/* A second remote port 0 on the same server is no conflict. */
	t = &cfg->tunnels[2];
	assert_int_equal(t->remote.port, 0);
	assert_string_equal(t->local.host, "::1");
	assert_int_equal(t->local.port, 8081);
	n = t->nginx;
	assert_int_equal(n->n_server_names, 2);
	assert_string_equal(n->server_names[0], "a.example.com");
	assert_string_equal(n->server_names[1], "b.example.com");
	assert_int_equal(n->tls, CONFIG_TLS_LETSENCRYPT);
	assert_null(n->cert);
	assert_null(n->key);
	assert_int_equal(n->websocket, 1);
	assert_null(n->client_max_body_size);
	assert_string_equal(n->acme_webroot, "/var/www/letsencrypt");
	config_free(cfg);
}

/* The errors of a generated text, as config_test_errors, timed. */
static char *
config_limit_errors(struct buf *b, int64_t *ms)
{
	struct config	*cfg;
	char		*out;
	int64_t		 t0 = time_now_ms();

	out = config_test_errors(buf_cstr(b), &cfg);
	if (ms != NULL)
		*ms = time_now_ms() - t0;
	assert_null(cfg);
	buf_clear(b);
	return out;
}

/* Assert that out is want, then free it. */
static void
config_limit_check(char *out, const char *want)
{
	assert_string_equal(out, want);
	free(out);
}

/*
 * The input limits: depth, nodes (aliases expanded), anchors, tunnels,
 * servers, errors. Each is refused with its place, and quickly: 100k
 * nesting levels took 20 s inside libyaml before the depth was checked
 * on its events.
 */
static void
test_config_limits(void **state)
{
	struct config	*cfg;
	struct buf	 b;
	int64_t		 ms;
	char		*out, *want, *p;
	int		 i;

	(void)state;
	buf_init(&b);

	/* 64 levels (the root mapping and 63 lists) pass the limits. */
	buf_printf(&b, "x: ");
	for (i = 0; i < 63; i++)
		buf_append(&b, "[", 1);
	for (i = 0; i < 63; i++)
		buf_append(&b, "]", 1);
	config_limit_check(config_limit_errors(&b, NULL),
	    "t.yaml:1:1: unknown key \"x\" at top level\n");
	/* 100k levels: refused at the 65th, in well under a second. */
	buf_printf(&b, "x: ");
	for (i = 0; i < 100000; i++)
		buf_append(&b, "[", 1);
	for (i = 0; i < 100000; i++)
		buf_append(&b, "]", 1);
	out = config_limit_errors(&b, &ms);
	config_limit_check(out, "t.yaml:1:67: nested deeper than 64 levels "
	    "of lists and mappings\n");
	print_message("100k nesting levels refused in %lld ms\n",
	    (long long)ms);
	/* Generous for a loaded machine and ASan; it was 20 s. */
	assert_true(ms < 2000);
	/* Block style: the 65th mapping starts on line 65. */
	for (i = 0; i < 70; i++)
		buf_printf(&b, "%*sk:\n", i, "");
	config_limit_check(config_limit_errors(&b, NULL),
	    "t.yaml:65:65: nested deeper than 64 levels of lists and "
	    "mappings\n");

	/* Nodes: the root, "x", the list and 99997 items make 100000. */
	buf_printf(&b, "x: [");
	for (i = 0; i < 99997; i++)
		buf_append(&b, "a,", 2);
	buf_printf(&b, "]\n");
	config_limit_check(config_limit_errors(&b, NULL),
	    "t.yaml:1:1: unknown key \"x\" at top level\n");
	buf_printf(&b, "x: [");
	for (i = 0; i < 99998; i++)
		buf_append(&b, "a,", 2);
	buf_printf(&b, "]\n");
	want = xasprintf("t.yaml:1:%d: more than 100000 YAML nodes (values, "
	    "lists and mappings, each alias counted as what it repeats)\n",
	    5 + 2 * 99997);
	config_limit_check(config_limit_errors(&b, NULL), want);
	free(want);
	/*
	 * Billion laughs: nine aliases to a list of nine, nine times over,
	 * is 9^9 nodes for the walkers. Lists a0..a4 stand for 10, 91, 820,
	 * 7381 and 66430 nodes; with them the count is 74738, and the first
	 * alias of line 6 (*a4) takes it past 100000.
	 */
	buf_printf(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
	for (i = 1; i < 9; i++)
		buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
		    "*a%d, *a%d, *a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1,
		    i - 1, i - 1, i - 1, i - 1, i - 1);
	out = config_limit_errors(&b, &ms);
	config_limit_check(out, "t.yaml:6:10: more than 100000 YAML nodes "
	    "(values, lists and mappings, each alias counted as what it "
	    "repeats)\n");
	assert_true(ms < 2000);
	/* Anchors: the 257th is refused where it stands. */
	buf_printf(&b, "x: [");
	for (i = 0; i < 300; i++)
		buf_printf(&b, "&a%03d 1,", i);
	buf_printf(&b, "]\n");
	want = xasprintf("t.yaml:1:%d: more than 256 anchors (&name)\n",
	    5 + 8 * 256);
	config_limit_check(config_limit_errors(&b, NULL), want);
	free(want);

	/* 5000 tunnels pass, the 5001st is refused. */
	for (i = 0; i < 5001; i++) {
		if (i == 0)
			buf_printf(&b, BASE "tunnels:\n");
		buf_printf(&b, "  - {name: t%d, remote: %d, local: 1}\n", i,
		    i + 1);
		if (i == 4999) {
			cfg = config_test_good("t.yaml", buf_cstr(&b));
			assert_int_equal(cfg->n_tunnels, 5000);
			config_free(cfg);
		}
	}
	config_limit_check(config_limit_errors(&b, NULL),
	    "t.yaml:5008:5: more than 5000 tunnels\n");
	/* 1000 servers pass, the 1001st is refused. */
	buf_printf(&b, "servers:\n");
	for (i = 0; i < 1001; i++)
		buf_printf(&b, "  s%d: {host: h, user: u, identity: /id, "
		    "known_hosts: /kh}\n", i);
	config_limit_check(config_limit_errors(&b, NULL),
	    "t.yaml:1002:3: more than 1000 servers\n");

	/* 100 problems are listed, then the walk stops and says so. */
	for (i = 0; i < 150; i++)
		buf_printf(&b, "k%d: 1\n", i);
	out = config_limit_errors(&b, NULL);
	for (i = 0, p = out; i < 100; i++) {
		want = xasprintf("t.yaml:%d:1: unknown key \"k%d\" at top "
		    "level\n", i + 1, i);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
		free(want);
	}
	assert_string_equal(p, "t.yaml: stopped after 100 problems; fix "
	    "these first\n");
	free(out);
	buf_clear(&b);
}

/* Smaller valid variants: null sections, IPv6 and unix endpoints. */
static void
test_config_good_variants(void **state)
{
	struct config	*cfg;
	char		*cwd, *want;

	(void)state;
	/* No tunnels at all is valid: the daemon idles. */
	cfg = config_test_good("t.yaml", BASE);
	assert_int_equal(cfg->n_tunnels, 0);
	config_free(cfg);
	cfg = config_test_good("t.yaml", BASE "tunnels:\n");
	assert_int_equal(cfg->n_tunnels, 0);
	config_free(cfg);
	cfg = config_test_good("t.yaml", "servers: {}\ntunnels: []\n");
	assert_int_equal(cfg->n_servers, 0);
	config_free(cfg);

	cfg = config_test_good("t.yaml", BASE "tunnels:\n"
	    "  - {name: a, remote: \"[::1]:4001\", local: \"unix:/run/a.s\"}\n"
	    "  - {name: b, remote: \"[::1]:4002\", local: \"[::1]:80\"}\n"
	    "  - {name: c, remote: 0, local: 1}\n"
	    "  - {name: d, remote: 0, local: 2}\n"
	    "  - {name: e, remote: \"127.0.0.1:4001\", local: 3}\n");
	assert_int_equal(cfg->n_tunnels, 5);
	assert_string_equal(cfg->tunnels[0].remote.host, "::1");
	assert_int_equal(cfg->tunnels[0].remote.port, 4001);
	assert_int_equal(cfg->tunnels[0].local.kind, ADDR_UNIX);
	assert_string_equal(cfg->tunnels[0].local.host, "/run/a.s");
	assert_string_equal(cfg->tunnels[1].local.host, "::1");
	assert_int_equal(cfg->tunnels[1].local.port, 80);
	assert_int_equal(cfg->tunnels[2].remote.port, 0);
	assert_int_equal(cfg->tunnels[3].remote.port, 0);
	/* [::1]:4001 and 127.0.0.1:4001 are different listeners. */
	assert_string_equal(cfg->tunnels[4].remote.host, "127.0.0.1");
	config_free(cfg);

	/* The caps themselves are accepted. */
	cfg = config_test_good("t.yaml", BASE "    keepalive: 24h\n"
	    "    connect_timeout: 86400000ms\n    keepalive_count: 100\n"
	    "backoff: {initial: 1440m, max: 24h}\n");
	assert_int_equal(cfg->servers[0].keepalive_ms, 86400000);
	assert_int_equal(cfg->servers[0].connect_timeout_ms, 86400000);
	assert_int_equal(cfg->servers[0].keepalive_count, 100);
	assert_int_equal(cfg->backoff_initial_ms, 86400000);
	assert_int_equal(cfg->backoff_max_ms, 86400000);
	config_free(cfg);

	/* A relative config path resolves against the working directory. */
	cfg = config_test_good("conf/t.yaml", "servers:\n  vps:\n"
	    "    host: h\n    user: u\n    identity: id\n"
	    "    known_hosts: ./k/kh\n");
	cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	want = xasprintf("%s/conf/id", cwd);
	assert_string_equal(cfg->servers[0].identity, want);
	free(want);
	want = xasprintf("%s/conf/k/kh", cwd);
	assert_string_equal(cfg->servers[0].known_hosts, want);
	free(want);
	free(cwd);
	config_free(cfg);
}

/* The shipped example parses (its key files do not exist here). */
static void
test_config_example(void **state)
{
	struct config_errors	 errs;
	struct config		*cfg;
	const char		*src = getenv("TESTS_SRCDIR");
	char			*path, *text = NULL;
	size_t			 len = 0;
	FILE			*fp;
	const struct config_tunnel *t;

	(void)state;
	path = xasprintf("%s/../etc/tunnels.yaml", src != NULL ? src :
	    "tests");
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	text = xmalloc(1024 * 1024);
	len = fread(text, 1, 1024 * 1024, fp);
	fclose(fp);
	memset(&errs, 0, sizeof errs);
	cfg = config_parse("/etc/tunnels/tunnels.yaml", text, len, 0, &errs);
	if (cfg == NULL) {
		config_errors_print(&errs, stderr);
		fail_msg("%s does not parse", path);
	}
	assert_int_equal(cfg->n_servers, 1);
	assert_string_equal(cfg->servers[0].name, "vps");
	assert_string_equal(cfg->servers[0].host, "proxy.example.com");
	t = config_tunnel_find(cfg, "blog");
	assert_non_null(t);
	assert_int_equal(t->remote.port, 4001);
	assert_int_equal(t->local.port, 1313);
	assert_non_null(t->nginx);
	assert_int_equal(t->nginx->tls, CONFIG_TLS_LETSENCRYPT);
	assert_int_equal(t->nginx->n_server_names, 2);
	assert_string_equal(t->nginx->server_names[0], "blog.example.com");
	assert_string_equal(t->nginx->server_names[1], "www.blog.example.com");
	t = config_tunnel_find(cfg, "git");
	assert_non_null(t);
	assert_null(t->nginx);
	config_free(cfg);
	config_errors_clear(&errs);
	free(text);
	free(path);
}

/* Durations: units, missing unit, negatives, junk, overflow. */
static void
test_config_duration(void **state)
{
	static const struct {
		const char	*text;
		int64_t		 ms;
		const char	*err;
	} cases[] = {
		{ "10s", 10000, NULL },
		{ "500ms", 500, NULL },
		{ "1m", 60000, NULL },
		{ "2h", 7200000, NULL },
		{ "0s", 0, NULL },
		{ "9223372036854775807ms", INT64_MAX, NULL },
		{ "10", 0, "duration \"10\" needs a unit (ms, s, m or h)" },
		{ "-1s", 0, "duration \"-1s\" must not be negative" },
		{ "", 0, "invalid duration \"\": expected a number and a unit "
		    "(ms, s, m or h), e.g. 10s" },
		{ "s", 0, "invalid duration \"s\": expected a number and a "
		    "unit (ms, s, m or h), e.g. 10s" },
		{ "10 s", 0, "invalid duration \"10 s\": expected a number and "
		    "a unit (ms, s, m or h), e.g. 10s" },
		{ "10S", 0, "invalid duration \"10S\": expected a number and a "
		    "unit (ms, s, m or h), e.g. 10s" },
		{ "1d", 0, "invalid duration \"1d\": expected a number and a "
		    "unit (ms, s, m or h), e.g. 10s" },
		{ "9223372036854775808ms", 0,
		    "duration \"9223372036854775808ms\" is too large" },
		{ "9223372036854775s", INT64_C(9223372036854775000), NULL },
		{ "9223372036854776s", 0,
		    "duration \"9223372036854776s\" is too large" },
		{ "99999999999999999999h", 0,
		    "duration \"99999999999999999999h\" is too large" },
	};
	int64_t	 ms;
	char	*cause;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ms = -1;
		cause = NULL;
		if (cases[i].err == NULL) {
			assert_int_equal(config_parse_duration(cases[i].text,
			    &ms, &cause), 0);
			assert_null(cause);
			assert_true(ms == cases[i].ms);
		} else {
			assert_int_equal(config_parse_duration(cases[i].text,
			    &ms, &cause), -1);
			assert_string_equal(cause, cases[i].err);
			free(cause);
		}
	}
}

/* Compare tunnel a's nginx section with n (for FLIP_STR). */
static int
config_test_nginx_eq(const struct config_tunnel *a,
    const struct config_nginx *n)
{
	return config_nginx_equal(a->nginx, n);
}

/* Equality sees every field but not positions (reload diffs). */
static void
test_config_equal(void **state)
{
	struct config		*a, *b;
	struct config_server	*sb;
	struct config_tunnel	*tb;
	struct config_nginx	*na, *nb;
	char			*saved, other[] = "/other";
	size_t			 i;

	(void)state;
	a = config_test_good("/etc/tunnels/t.yaml", config_full);
	/* The same text parsed twice gives equal servers and tunnels. */
	b = config_test_good("/etc/tunnels/t.yaml", config_full);
	for (i = 0; i < a->n_servers; i++)
		assert_true(config_server_equal(&a->servers[i],
		    &b->servers[i]));
	for (i = 0; i < a->n_tunnels; i++)
		assert_true(config_tunnel_equal(&a->tunnels[i],
		    &b->tunnels[i]));
	assert_false(config_server_equal(&a->servers[0], &b->servers[1]));
	assert_false(config_tunnel_equal(&a->tunnels[1], &b->tunnels[2]));

	sb = &b->servers[0];
	sb->line++;
	sb->col++;
	assert_true(config_server_equal(&a->servers[0], sb));
#define FLIP_INT(f) do {						\
	sb->f++;							\
	assert_false(config_server_equal(&a->servers[0], sb));		\
	sb->f--;							\
} while (0)
#define FLIP_STR(obj, f, eq, orig) do {					\
	saved = (obj)->f;						\
	(obj)->f = (obj)->f == NULL ? other : NULL;			\
	assert_false(eq((orig), (obj)));				\
	if (saved != NULL) {						\
		(obj)->f = other;					\
		assert_false(eq((orig), (obj)));			\
	}								\
	(obj)->f = saved;						\
	assert_true(eq((orig), (obj)));					\
} while (0)
	FLIP_INT(port);
	FLIP_INT(keepalive_ms);
	FLIP_INT(keepalive_count);
	FLIP_INT(connect_timeout_ms);
	FLIP_INT(reclaim_stale_port);
	FLIP_STR(sb, name, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, host, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, user, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, identity, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, passphrase_file, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, known_hosts, config_server_equal, &a->servers[0]);
	FLIP_STR(sb, host_key, config_server_equal, &a->servers[0]);

	tb = &b->tunnels[0];
	tb->line += 5;
	tb->server_index = 7;
	assert_true(config_tunnel_equal(&a->tunnels[0], tb));
	FLIP_STR(tb, name, config_tunnel_equal, &a->tunnels[0]);
	FLIP_STR(tb, server, config_tunnel_equal, &a->tunnels[0]);
	tb->remote.port++;
	assert_false(config_tunnel_equal(&a->tunnels[0], tb));
	tb->remote.port--;
	tb->local.kind = ADDR_INET;
	assert_false(config_tunnel_equal(&a->tunnels[0], tb));
	tb->local.kind = ADDR_UNIX;
	tb->local.host[1] = 'X';
	assert_false(config_tunnel_equal(&a->tunnels[0], tb));
	tb->local.host[1] = 'r';
	assert_true(config_tunnel_equal(&a->tunnels[0], tb));

	/* The nginx section has its own comparison (see below). */
	na = a->tunnels[0].nginx;
	nb = tb->nginx;
	assert_false(config_nginx_equal(na, NULL));
	assert_false(config_nginx_equal(NULL, nb));
	assert_true(config_nginx_equal(NULL, NULL));
	nb->line++;
	assert_true(config_nginx_equal(na, nb));
	nb->tls = CONFIG_TLS_LETSENCRYPT;
	assert_false(config_nginx_equal(na, nb));
	nb->tls = CONFIG_TLS_FILES;
	nb->websocket = 1;
	assert_false(config_nginx_equal(na, nb));
	nb->websocket = 0;
	FLIP_STR(nb, cert, config_test_nginx_eq, &a->tunnels[0]);
	FLIP_STR(nb, key, config_test_nginx_eq, &a->tunnels[0]);
	FLIP_STR(nb, client_max_body_size, config_test_nginx_eq,
	    &a->tunnels[0]);
	FLIP_STR(nb, acme_webroot, config_test_nginx_eq, &a->tunnels[0]);
	saved = nb->server_names[0];
	nb->server_names[0] = other;
	assert_false(config_nginx_equal(na, nb));
	nb->server_names[0] = saved;
	nb->n_server_names = 0;
	assert_false(config_nginx_equal(na, nb));
	nb->n_server_names = 1;
	assert_true(config_nginx_equal(na, nb));
#undef FLIP_INT
#undef FLIP_STR
	config_free(a);
	config_free(b);
}

/* One tunnel, before and after an nginx-only change, and without nginx. */
static const char config_nginx_before[] =
    BASE BLOG
    "    nginx:\n"
    "      server_name: blog.example.com\n"
    "      tls: letsencrypt\n";
static const char config_nginx_after[] =
    BASE BLOG
    "    nginx:\n"
    "      server_name: [blog.example.com, www.example.com]\n"
    "      tls: off\n"
    "      client_max_body_size: 10m\n";
static const char config_nginx_none[] =
    BASE BLOG;

/* A reload keeps a tunnel whose only change is its nginx section. */
static void
test_config_equal_nginx(void **state)
{
	struct config	*a, *b, *c;

	(void)state;
	a = config_test_good("/etc/tunnels/t.yaml", config_nginx_before);
	b = config_test_good("/etc/tunnels/t.yaml", config_nginx_after);
	c = config_test_good("/etc/tunnels/t.yaml", config_nginx_none);
	assert_true(config_tunnel_equal(&a->tunnels[0], &b->tunnels[0]));
	assert_false(config_nginx_equal(a->tunnels[0].nginx,
	    b->tunnels[0].nginx));
	/* Adding or removing the whole section is an nginx change too. */
	assert_true(config_tunnel_equal(&a->tunnels[0], &c->tunnels[0]));
	assert_true(config_tunnel_equal(&c->tunnels[0], &b->tunnels[0]));
	assert_false(config_nginx_equal(a->tunnels[0].nginx,
	    c->tunnels[0].nginx));
	/* A change outside nginx still counts. */
	c->tunnels[0].local.port++;
	assert_false(config_tunnel_equal(&a->tunnels[0], &c->tunnels[0]));
	config_free(a);
	config_free(b);
	config_free(c);
}

/* The files the filesystem checks look at, made in a private dir. */
struct config_files {
	char	dir[64];
};

/* Names created by config_files_setup (removed by the teardown). */
static const char *config_files_names[] = {
	"id", "id644", "id620", "rsa", "rsapem", "dsa", "enc", "pass",
	"pass644", "kh", "khbad", "khca", "garbage", "tunnels.yaml", "fifo",
	"big.yaml"
};

/* Copy a fixture key (or write text) to dir/name with a mode. */
static void
config_files_put(const char *dir, const char *name, const char *fixture,
    const char *text, mode_t mode)
{
	const char	*src = getenv("TESTS_SRCDIR");
	char		*from, *to, buf[16384];
	size_t		 n = 0;
	FILE		*in, *out;

	if (fixture != NULL) {
		from = xasprintf("%s/unit/data/keys/%s",
		    src != NULL ? src : "tests", fixture);
		in = fopen(from, "r");
		if (in == NULL)
			fail_msg("cannot open %s", from);
		n = fread(buf, 1, sizeof buf, in);
		fclose(in);
		free(from);
	} else {
		n = strlen(text);
		memcpy(buf, text, n);
	}
	to = xasprintf("%s/%s", dir, name);
	out = fopen(to, "w");
	assert_non_null(out);
	assert_int_equal(fwrite(buf, 1, n, out), n);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(to, mode), 0);
	free(to);
}

/* Create the temp dir with keys in good and bad modes. */
static int
config_files_setup(void **state)
{
	struct config_files	*f = xcalloc(1, sizeof *f);
	char			*sub;

	snprintf(f->dir, sizeof f->dir, "/tmp/test_config.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	config_files_put(f->dir, "id", "ed25519", NULL, 0600);
	config_files_put(f->dir, "id644", "ed25519", NULL, 0644);
	config_files_put(f->dir, "id620", "ed25519", NULL, 0620);
	config_files_put(f->dir, "rsa", "rsa", NULL, 0600);
	config_files_put(f->dir, "rsapem", "rsa_pem", NULL, 0600);
	config_files_put(f->dir, "dsa", "dsa", NULL, 0600);
	config_files_put(f->dir, "enc", "ed25519_enc", NULL, 0600);
	config_files_put(f->dir, "pass", NULL, "secret\n", 0600);
	config_files_put(f->dir, "pass644", NULL, "secret\n", 0644);
	config_files_put(f->dir, "kh", NULL, "h " ED25519_PUB "\n", 0644);
	config_files_put(f->dir, "khbad", NULL, "# for h\n"
	    "h " ED25519_PUB "\nother ssh-ed25519 AAAA*AAA\n", 0644);
	config_files_put(f->dir, "khca", NULL, "h " ED25519_PUB "\n"
	    "@cert-authority *.example,h " ED25519_PUB "\n"
	    "@cert-authority other " ED25519_PUB "\n", 0644);
	config_files_put(f->dir, "garbage", NULL, "not a key\n", 0600);
	sub = xasprintf("%s/sub", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	free(sub);
	/* No writer ever opens it: a blocking open would wait forever. */
	sub = xasprintf("%s/fifo", f->dir);
	assert_int_equal(mkfifo(sub, 0600), 0);
	free(sub);
	*state = f;
	return 0;
}

/* Remove the temp dir. */
static int
config_files_teardown(void **state)
{
	struct config_files	*f = *state;
	char			*path;
	size_t			 i;

	for (i = 0; i < sizeof config_files_names /
	    sizeof config_files_names[0]; i++) {
		path = xasprintf("%s/%s", f->dir, config_files_names[i]);
		unlink(path);
		free(path);
	}
	path = xasprintf("%s/sub", f->dir);
	rmdir(path);
	free(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Replace every "@" in s with dir. */
static char *
config_test_subst(const char *s, const char *dir)
{
	struct buf	b;
	char		*out;

	buf_init(&b);
	for (; *s != '\0'; s++) {
		if (*s == '@')
			buf_append(&b, dir, strlen(dir));
		else
			buf_append(&b, s, 1);
	}
	out = xstrdup(buf_cstr(&b));
	buf_clear(&b);
	return out;
}

/* A server using these files; "@" stands for the temp dir. */
struct config_file_case {
	const char	*identity;
	const char	*known_hosts;	/* NULL: use host_key instead */
	const char	*passphrase;	/* NULL: none */
	const char	*want;		/* "" when valid */
};

static const struct config_file_case config_file_cases[] = {
	/* Relative paths resolve against the config file's directory. */
	{ "id", "kh", NULL, "" },
	{ "@/id", NULL, NULL, "" },
	{ "enc", "./kh", "pass", "" },
	{ "nope", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity file \"@/nope\" does not exist\n" },
	{ "id644", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity file \"@/id644\" is readable by "
	  "group or others (mode 0644); run chmod 600 \"@/id644\"\n" },
	{ "id620", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity file \"@/id620\" is writable by "
	  "group or others (mode 0620); run chmod 600 \"@/id620\"\n" },
	/* RSA keys are fine: libssh2 signs with rsa-sha2-512/256. */
	{ "rsa", "kh", NULL, "" },
	{ "rsapem", "kh", NULL, "" },
	{ "dsa", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity \"@/dsa\" is a DSA key, which "
	  "OpenSSH 7.0 and later refuse; generate an ed25519 key with "
	  "ssh-keygen -t ed25519\n" },
	{ "enc", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity \"@/enc\" is encrypted but server "
	  "\"vps\" has no passphrase_file\n" },
	{ "enc", "kh", "pass644",
	  "@/tunnels.yaml:7:22: passphrase file \"@/pass644\" is readable by "
	  "group or others (mode 0644); run chmod 600 \"@/pass644\"\n" },
	{ "enc", "kh", "nopass",
	  "@/tunnels.yaml:7:22: passphrase file \"@/nopass\" does not "
	  "exist\n" },
	/* A FIFO in a file's place is refused, never waited on. */
	{ "fifo", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity file \"@/fifo\" is not a regular "
	  "file (a FIFO)\n" },
	{ "id", "fifo", NULL,
	  "@/tunnels.yaml:6:18: known_hosts file \"@/fifo\" is not a regular "
	  "file (a FIFO)\n" },
	{ "enc", "kh", "fifo",
	  "@/tunnels.yaml:7:22: passphrase file \"@/fifo\" is not a regular "
	  "file (a FIFO)\n" },
	{ "garbage", "kh", NULL,
	  "@/tunnels.yaml:5:15: \"@/garbage\" is not an SSH private key\n" },
	{ "sub", "kh", NULL,
	  "@/tunnels.yaml:5:15: identity file \"@/sub\" is not a regular "
	  "file (a directory)\n" },
	{ "id", "nokh", NULL,
	  "@/tunnels.yaml:6:18: known_hosts file \"@/nokh\" does not "
	  "exist: put the server's host keys there (`tunnels server-setup "
	  "--script` prints them on the server; or ssh-keyscan, once their "
	  "fingerprints are checked)\n" },
	{ "id", "sub", NULL,
	  "@/tunnels.yaml:6:18: known_hosts file \"@/sub\" is not a regular "
	  "file (a directory)\n" },
	/* known_hosts is read as the daemon reads it. */
	{ "id", "khbad", NULL,
	  "@/tunnels.yaml:6:18: @/khbad:3: the ssh-ed25519 key is not valid "
	  "base64\n" },
	/* Only warnings (test_config_files_warnings): still valid. */
	{ "id", "khca", NULL, "" },
	{ "id644", "nokh", "nopass",
	  "@/tunnels.yaml:5:15: identity file \"@/id644\" is readable by "
	  "group or others (mode 0644); run chmod 600 \"@/id644\"\n"
	  "@/tunnels.yaml:6:18: known_hosts file \"@/nokh\" does not "
	  "exist: put the server's host keys there (`tunnels server-setup "
	  "--script` prints them on the server; or ssh-keyscan, once their "
	  "fingerprints are checked)\n"
	  "@/tunnels.yaml:7:22: passphrase file \"@/nopass\" does not "
	  "exist\n" },
};

/* Build the YAML of one file case (lines 5, 6, 7 as in the messages). */
static char *
config_file_yaml(const struct config_file_case *c, const char *dir)
{
	char	*ident, *kh, *yaml;

	ident = config_test_subst(c->identity, dir);
	kh = c->known_hosts != NULL ?
	    xasprintf("    known_hosts: %s\n", c->known_hosts) :
	    xstrdup("    host_key: \"" ED25519_PUB "\"\n");
	yaml = xasprintf("servers:\n  vps:\n    host: h\n    user: u\n"
	    "    identity: %s\n%s%s%s%s", ident, kh,
	    c->passphrase != NULL ? "    passphrase_file: " : "",
	    c->passphrase != NULL ? c->passphrase : "",
	    c->passphrase != NULL ? "\n" : "");
	free(ident);
	free(kh);
	return yaml;
}

/* With check_files: existence, type, mode and key type of each file. */
static void
test_config_files(void **state)
{
	struct config_files		*f = *state;
	const struct config_file_case	*c;
	struct config_errors		 errs;
	struct config			*cfg;
	char				*path, *yaml, *want, *out, *id;
	size_t				 i, len;
	FILE				*fp;
	int				 bad = 0;

	path = xasprintf("%s/tunnels.yaml", f->dir);
	for (i = 0; i < sizeof config_file_cases /
	    sizeof config_file_cases[0]; i++) {
		c = &config_file_cases[i];
		yaml = config_file_yaml(c, f->dir);
		want = config_test_subst(c->want, f->dir);
		memset(&errs, 0, sizeof errs);
		cfg = config_parse(path, yaml, strlen(yaml), 1, &errs);
		out = NULL;
		fp = open_memstream(&out, &len);
		assert_non_null(fp);
		config_errors_print(&errs, fp);
		fclose(fp);
		if (strcmp(out, want) != 0 ||
		    (cfg == NULL) != (*want != '\0')) {
			print_error("file case %zu:\n--- want\n%s--- got\n%s",
			    i, want, out);
			bad++;
		}

		if (cfg != NULL && *c->identity != '@') {
			id = xasprintf("%s/%s", f->dir, c->identity);
			assert_string_equal(cfg->servers[0].identity, id);
			free(id);
		}
		config_free(cfg);
		config_errors_clear(&errs);
		free(out);
		free(want);
		free(yaml);
	}
	free(path);
	assert_int_equal(bad, 0);
}

/*
 * An @cert-authority line for the server is a warning (the daemon skips
 * it); one for another host is not mentioned; the config stays valid.
 */
static void
test_config_files_warnings(void **state)
{
	struct config_files	*f = *state;
	struct config_file_case	 c = { "id", "khca", NULL, "" };
	struct config_errors	 errs;
	struct config		*cfg;
	char			*path, *yaml, *want, *out = NULL;
	size_t			 len;
	FILE			*fp;

	path = xasprintf("%s/tunnels.yaml", f->dir);
	yaml = config_file_yaml(&c, f->dir);
	memset(&errs, 0, sizeof errs);
	cfg = config_parse(path, yaml, strlen(yaml), 1, &errs);
	assert_non_null(cfg);
	assert_int_equal(errs.n, 0);
	assert_int_equal(errs.n_warn, 1);
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	config_warnings_print(&errs, fp);
	fclose(fp);
	want = xasprintf("%s/tunnels.yaml:6:18: warning: server \"vps\": "
	    "%s/khca:2: @cert-authority line for h ignored: host "
	    "certificates are not supported; list the server's own host "
	    "key\n", f->dir, f->dir);
	assert_string_equal(out, want);
	free(want);
	free(out);
	config_free(cfg);
	config_errors_clear(&errs);
	assert_null(errs.warn);
	assert_int_equal(errs.n_warn, 0);
	free(yaml);
	free(path);
}

/* config_load reads the file (and does the file checks). */
static void
test_config_load(void **state)
{
	struct config_files		*f = *state;
	struct config_errors		 errs;
	struct config			*cfg;
	char				*path, *yaml, *want, *out = NULL;
	size_t				 len;
	FILE				*fp;

	yaml = config_file_yaml(&config_file_cases[0], f->dir);
	config_files_put(f->dir, "tunnels.yaml", NULL, yaml, 0644);
	free(yaml);
	path = xasprintf("%s/tunnels.yaml", f->dir);
	memset(&errs, 0, sizeof errs);
	cfg = config_load(path, &errs);
	assert_non_null(cfg);
	assert_int_equal(errs.n, 0);
	want = xasprintf("%s/kh", f->dir);
	assert_string_equal(cfg->servers[0].known_hosts, want);
	free(want);
	config_free(cfg);
	config_errors_clear(&errs);
	free(path);

	/* Unreadable: "FILE: message", without a line. */
	path = xasprintf("%s/none.yaml", f->dir);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	fp = open_memstream(&out, &len);
	config_errors_print(&errs, fp);
	fclose(fp);
	want = xasprintf("%s: cannot read \"%s\": No such file or directory\n",
	    path, path);
	assert_string_equal(out, want);
	free(want);
	free(out);
	free(path);
	config_errors_clear(&errs);

	path = xasprintf("%s/sub", f->dir);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 0);
	want = xstrdup("not a regular file (a directory)");
	assert_string_equal(errs.v[0].msg, want);
	free(want);
	free(path);
	config_errors_clear(&errs);
	assert_null(errs.file);
	assert_int_equal(errs.n, 0);
}

/*
 * A FIFO or an oversized file as the config: refused at once with
 * "FILE: message" by the loader, by the control path lookup of status
 * and reload, and by the key and passphrase readers. The alarm turns a
 * regression (an open that blocks) into a failure instead of a hang.
 */
static void
test_config_not_regular(void **state)
{
	struct config_files	*f = *state;
	struct config_errors	 errs;
	struct keyfile_info	 ki;
	struct config		*cfg;
	char			*path, *want, *cause, *got, *big;
	FILE			*fp;

	alarm(20);
	path = xasprintf("%s/fifo", f->dir);
	memset(&errs, 0, sizeof errs);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	got = config_error_text(&errs, 0);
	want = xasprintf("%s: not a regular file (a FIFO)", path);
	assert_string_equal(got, want);
	free(got);
	config_errors_clear(&errs);
	assert_null(config_control_path(path, &cause));
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	assert_null(keyfile_read_passphrase(path, &cause));
	want = xasprintf("cannot read passphrase_file \"%s\": not a regular "
	    "file (a FIFO)", path);
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	assert_int_equal(keyfile_inspect(path, &ki, &cause), -1);
	want = xasprintf("\"%s\" is not a regular file", path);
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	free(path);

	/* Megabytes are no config: refused without being parsed. */
	path = xasprintf("%s/big.yaml", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	big = xcalloc(1, 1024 * 1024 + 1);
	memset(big, '#', 1024 * 1024);
	assert_int_equal(fwrite(big, 1, 1024 * 1024, fp), 1024 * 1024);
	assert_int_equal(fclose(fp), 0);
	/* Exactly the limit is read (a file of comments: empty config). */
	cfg = config_load(path, &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].msg, "empty configuration: expected a "
	    "mapping with \"servers\" and \"tunnels\"");
	config_errors_clear(&errs);
	fp = fopen(path, "a");
	assert_non_null(fp);
	assert_int_equal(fwrite("\n", 1, 1, fp), 1);
	assert_int_equal(fclose(fp), 0);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	got = config_error_text(&errs, 0);
	want = xasprintf("%s: too large: a configuration may have at most "
	    "1048576 bytes", path);
	assert_string_equal(got, want);
	free(got);
	config_errors_clear(&errs);
	assert_null(config_control_path(path, &cause));
	assert_string_equal(cause, want);
	free(cause);
	free(want);
	free(big);
	free(path);
	alarm(0);
}

/* Run the tests. */
/* Write text to a fresh temp file; returns its malloc'd path. */
static char *
control_file(const char *text)
{
	char	*path = xstrdup("/tmp/tunnels-control-XXXXXX.yaml");
	int	 fd = mkstemps(path, 5);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* The control path is found in valid files, broken ones, or defaulted. */
static void
test_config_control_path(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;	/* NULL: relative to the file's dir */
	} cases[] = {
		{ "control: /run/a.sock\nservers: {}\n", "/run/a.sock" },
		{ "servers:\n  x: {host: h}\ncontrol: /run/b.sock\n",
		  "/run/b.sock" },
		/* Broken below the key: still found. */
		{ "control: /run/c.sock\ntunnels: [\n  - : :\n", "/run/c.sock" },
		/* A nested control: key is not the top-level one. */
		{ "servers:\n  control: /run/nested.sock\n",
		  CONFIG_DEFAULT_CONTROL },
		{ "tunnels: []\n", CONFIG_DEFAULT_CONTROL },
		{ ": : :\n", CONFIG_DEFAULT_CONTROL },
		{ "control: rel.sock\n", NULL },
	};
	char	*path, *got, *dir, *cause;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		path = control_file(cases[i].text);
		got = config_control_path(path, &cause);
		assert_null(cause);
		if (cases[i].want != NULL)
			assert_string_equal(got, cases[i].want);
		else {
			dir = xasprintf("/tmp/rel.sock");
			assert_string_equal(got, dir);
			free(dir);
		}
		free(got);
		unlink(path);
		free(path);
	}
	got = config_control_path("/nonexistent/tunnels.yaml", &cause);
	assert_null(cause);
	assert_string_equal(got, CONFIG_DEFAULT_CONTROL);
	free(got);
}

/* Sizes: bytes, binary units, junk, decimal units, overflow. */
static void
test_config_size(void **state)
{
	static const struct {
		const char	*text;
		uint64_t	 bytes;
		const char	*err;
	} cases[] = {
		{ "65536", 65536, NULL },
		{ "0", 0, NULL },
		{ "100B", 100, NULL },
		{ "512KiB", 512 << 10, NULL },
		{ "512K", 512 << 10, NULL },
		{ "64MiB", 64 << 20, NULL },
		{ "64M", 64 << 20, NULL },
		{ "1GiB", 1 << 30, NULL },
		{ "2G", UINT64_C(2) << 30, NULL },
		{ "3TiB", UINT64_C(3) << 40, NULL },
		{ "18446744073709551615", UINT64_MAX, NULL },
		{ "64MB", 0, "invalid size \"64MB\": expected a number of bytes "
		    "with an optional unit KiB, MiB or GiB, e.g. 64MiB" },
		{ "64 MiB", 0, "invalid size \"64 MiB\": expected a number of "
		    "bytes with an optional unit KiB, MiB or GiB, e.g. 64MiB" },
		{ "", 0, "invalid size \"\": expected a number of bytes with "
		    "an optional unit KiB, MiB or GiB, e.g. 64MiB" },
		{ "-1MiB", 0, "invalid size \"-1MiB\": expected a number of "
		    "bytes with an optional unit KiB, MiB or GiB, e.g. 64MiB" },
		{ "1.5GiB", 0, "invalid size \"1.5GiB\": expected a number of "
		    "bytes with an optional unit KiB, MiB or GiB, e.g. 64MiB" },
		{ "18446744073709551616", 0,
		    "size \"18446744073709551616\" is too large" },
		{ "16777216TiB", 0, "size \"16777216TiB\" is too large" },
	};
	uint64_t	 v;
	char		*cause, buf[32];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cause = NULL;
		if (cases[i].err == NULL) {
			assert_int_equal(config_parse_size(cases[i].text, &v,
			    &cause), 0);
			assert_null(cause);
			assert_true(v == cases[i].bytes);
		} else {
			assert_int_equal(config_parse_size(cases[i].text, &v,
			    &cause), -1);
			assert_string_equal(cause, cases[i].err);
			free(cause);
		}
	}
	config_format_size(64 << 20, buf, sizeof buf);
	assert_string_equal(buf, "64MiB");
	config_format_size((64 << 20) + 1, buf, sizeof buf);
	assert_string_equal(buf, "67108865B");
	config_format_size(1536, buf, sizeof buf);
	assert_string_equal(buf, "1536B");
	config_format_size(0, buf, sizeof buf);
	assert_string_equal(buf, "0B");
}

/*
 * The limits against a misbehaving server: defaults, values, errors,
 * and a change of them is not a different server or tunnel (a reload
 * applies it without reconnecting).
 */
static void
test_config_server_limits(void **state)
{
	struct config	*a, *b;
	static const char bad[] = BASE
	    "    max_session_memory: 512KiB\n"
	    "    max_connections: 0\n"
	    "tunnels:\n  - name: blog\n    remote: 4001\n    local: 1313\n"
	    "    max_connections: lots\n"
	    "  - name: git\n    remote: 4002\n    local: 22\n"
	    "    max_connections: -3\n";
	static const char bad_size[] = BASE
	    "    max_session_memory: 64MB\n";
	static const char bad_window[] = "receive_window_budget: lots\n" BASE
	    "    max_receive_window: 2GiB\n";
	char		*out;

	(void)state;
	a = config_test_good("/t.yaml", BASE BLOG);
	assert_true(a->servers[0].max_session_memory == 64 << 20);
	assert_int_equal(a->servers[0].max_connections, 16384);
	assert_int_equal(a->tunnels[0].max_connections, 4096);
	assert_true(a->servers[0].max_receive_window == 16 << 20);
	assert_true(a->receive_window_budget == 64 << 20);
	b = config_test_good("/t.yaml", "receive_window_budget: 1GiB\n" BASE
	    "    max_session_memory: 8MiB\n"
	    "    max_receive_window: 0\n"
	    "    max_connections: 100\n" BLOG
	    "    max_connections: 10\n");
	assert_true(b->servers[0].max_receive_window == 0);
	assert_true(b->receive_window_budget == 1 << 30);
	assert_true(b->servers[0].max_session_memory == 8 << 20);
	assert_int_equal(b->servers[0].max_connections, 100);
	assert_int_equal(b->tunnels[0].max_connections, 10);
	assert_true(config_server_equal(&a->servers[0], &b->servers[0]));
	assert_true(config_tunnel_equal(&a->tunnels[0], &b->tunnels[0]));
	config_free(a);
	config_free(b);

	out = config_test_errors(bad, &a);
	assert_null(a);
	assert_string_equal(out,
	    "t.yaml:7:25: \"max_session_memory\" 512KiB is too small: at "
	    "least 1MiB\n"
	    "t.yaml:8:22: \"max_connections\" must be at least 1\n"
	    "t.yaml:13:22: \"max_connections\" must be an integer\n"
	    "t.yaml:17:22: \"max_connections\" must be at least 1\n");
	free(out);
	out = config_test_errors(bad_size, &a);
	assert_null(a);
	assert_string_equal(out, "t.yaml:7:25: invalid size \"64MB\": "
	    "expected a number of bytes with an optional unit KiB, MiB or "
	    "GiB, e.g. 64MiB\n");
	free(out);

	out = config_test_errors(bad_window, &a);
	assert_null(a);
	assert_string_equal(out, "t.yaml:1:24: invalid size \"lots\": "
	    "expected a number of bytes with an optional unit KiB, MiB or "
	    "GiB, e.g. 64MiB\n"
	    "t.yaml:8:25: \"max_receive_window\" 2GiB is too large: at "
	    "most 1GiB\n");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_bad_table),
		cmocka_unit_test(test_config_all_errors),
		cmocka_unit_test(test_config_limits),
		cmocka_unit_test(test_config_minimal_defaults),
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_good_variants),
		cmocka_unit_test(test_config_example),
		cmocka_unit_test(test_config_duration),
		cmocka_unit_test(test_config_size),
		cmocka_unit_test(test_config_server_limits),
		cmocka_unit_test(test_config_equal),
		cmocka_unit_test(test_config_equal_nginx),
		cmocka_unit_test(test_config_control_path),
		cmocka_unit_test_setup_teardown(test_config_files,
		    config_files_setup, config_files_teardown),
		cmocka_unit_test_setup_teardown(test_config_files_warnings,
		    config_files_setup, config_files_teardown),
		cmocka_unit_test_setup_teardown(test_config_load,
		    config_files_setup, config_files_teardown),
		cmocka_unit_test_setup_teardown(test_config_not_regular,
		    config_files_setup, config_files_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
