/*
 * `tunnels server-setup`: what the VPS needs for a server, ready to paste:
 * the authorized_keys line restricted to exactly the configured ports, an
 * sshd_config Match block, and the certbot commands for the TLS names.
 * The config is parsed without the filesystem checks (a first
 * server-setup has no known_hosts yet).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cmd_common.h"
#include "cmd_nginx.h"
#include "config.h"
#include "keyfile.h"
#include "nginx.h"
#include "util.h"

/* Long-only options. */
enum {
	CMD_OPT_SERVER = 256
};

/* "TYPE BASE64" from a .pub file's first line; NULL after *cause. */
static char *
cmd_read_pub(const char *path, char **cause)
{
	char	 line[16384], *sp;
	FILE	*fp;

	if ((fp = fopen(path, "re")) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fgets(line, sizeof line, fp) == NULL) {
		fclose(fp);
		*cause = xasprintf("%s: empty", path);
		return NULL;
	}
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	if (keyfile_check_public(line, NULL, cause) == -1)
		return NULL;
	/* Drop the comment: the line gets tunnels@SERVER instead. */
	if ((sp = strchr(line, ' ')) != NULL &&
	    (sp = strchr(sp + 1, ' ')) != NULL)
		*sp = '\0';
	return xstrdup(line);
}

/*
 * The identity's public key, "TYPE BASE64": from the private key file
 * (the OpenSSH format keeps it in clear, even when encrypted), else from
 * IDENTITY.pub. NULL after printing why.
 */
static char *
cmd_public_key(const struct config_server *s)
{
	struct keyfile_info	 ki;
	char			*cause = NULL, *cause2 = NULL, *pub = NULL;
	char			*pubpath;

	memset(&ki, 0, sizeof ki);
	if (keyfile_inspect(s->identity, &ki, &cause) == 0 &&
	    ki.public_line != NULL) {
		pub = xstrdup(ki.public_line);
		goto out;
	}
	pubpath = xasprintf("%s.pub", s->identity);
	pub = cmd_read_pub(pubpath, &cause2);
	if (pub == NULL)
		fprintf(stderr, "tunnels: server %s: cannot find the public "
		    "key of identity %s: %s; and %s\n", s->name, s->identity,
		    cause != NULL ? cause : "a PEM key without the public half",
		    cause2);
	free(pubpath);
out:
	free(cause);
	free(cause2);
	keyfile_info_clear(&ki);
	return pub;
}

/* A remote as permitlisten/PermitListen spell it: "[::1]:4001", "*". */
static char *
cmd_listen_spec(const struct addr *a)
{
	char	port[8];

	/* sshd cannot permit port 0; "*" allows whatever it allocates. */
	if (a->port == 0)
		snprintf(port, sizeof port, "*");
	else
		snprintf(port, sizeof port, "%d", a->port);
	if (addr_is_ipv6(a))
		return xasprintf("[%s]:%s", a->host, port);
	return xasprintf("%s:%s", a->host, port);
}

/* 1 if sshd binds the address on loopback only with GatewayPorts no. */
static int
cmd_is_loopback(const struct addr *a)
{
	return strncmp(a->host, "127.", 4) == 0 ||
	    strcmp(a->host, "::1") == 0 || strcmp(a->host, "localhost") == 0;
}

/* The listen specs of server si's tunnels, in config order, deduped. */
static size_t
cmd_listen_specs(const struct config *cfg, size_t si, char ***out)
{
	char	**v = NULL, *s;
	size_t	  n = 0, i, j;

	for (i = 0; i < cfg->n_tunnels; i++) {
		if (cfg->tunnels[i].server_index != si)
			continue;
		s = cmd_listen_spec(&cfg->tunnels[i].remote);
		for (j = 0; j < n && strcmp(v[j], s) != 0; j++)
			;
		if (j < n) {
			free(s);
			continue;
		}
		v = xreallocarray(v, n + 1, sizeof *v);
		v[n++] = s;
	}
	*out = v;
	return n;
}

/* The authorized_keys options and key (variant with or without exec). */
static void
cmd_key_line(struct buf *b, char **specs, size_t n, int exec,
    const char *pub, const char *server)
{
	size_t	i;

	/* With no tunnel, "restrict" alone forbids every forward. */
	buf_printf(b, "restrict%s%s", n > 0 ? ",port-forwarding" : "",
	    exec ? "" : ",command=\"/bin/false\"");
	for (i = 0; i < n; i++)
		buf_printf(b, ",permitlisten=\"%s\"", specs[i]);
	buf_printf(b, " %s tunnels@%s\n", pub, server);
}

/* Section 1: the authorized_keys line(s). */
static void
cmd_setup_keys(struct buf *b, const struct config_server *s, char **specs,
    size_t n, const char *pub)
{
	buf_printf(b, "# ---- 1. authorized_keys\n"
	    "# Append this line to the authorized_keys file of \"%s\" on "
	    "%s\n# (usually ~%s/.ssh/authorized_keys, mode 600). It allows "
	    "listening on\n# exactly the ports below, and no PTY, agent or "
	    "X11 forwarding.\n", s->user, s->host, s->user);
	if (n == 0)
		buf_printf(b, "# No tunnel uses this server: the key may not "
		    "forward anything.\n");
	if (s->reclaim_stale_port) {
		buf_printf(b, "# reclaim_stale_port: true: after a reconnect "
		    "the daemon runs two short\n# commands (exec, no PTY) to "
		    "find and end its own stale session, which\n# still "
		    "holds the port; \"restrict\" allows that (the account "
		    "needs a shell).\n");
		cmd_key_line(b, specs, n, 1, pub, s->name);
		buf_printf(b, "# Variant without any command execution "
		    "(command= forces /bin/false).\n# Then set "
		    "reclaim_stale_port: false: a port held by a stale "
		    "session\n# comes back only when sshd's ClientAlive ends "
		    "that session (45 s below):\n# ");
		cmd_key_line(b, specs, n, 0, pub, s->name);
	} else {
		buf_printf(b, "# reclaim_stale_port: false: the daemon runs "
		    "no commands, so none are\n# allowed (command= forces "
		    "/bin/false); a port held by a stale session comes\n# "
		    "back when sshd's ClientAlive ends that session (45 s "
		    "below).\n");
		cmd_key_line(b, specs, n, 0, pub, s->name);
		buf_printf(b, "# With reclaim_stale_port: true the daemon ends "
		    "its own stale session at\n# once; it needs to run two "
		    "short commands, so use this line instead:\n# ");
		cmd_key_line(b, specs, n, 1, pub, s->name);
	}
}

/* Section 2: the sshd_config Match block. */
static void
cmd_setup_sshd(struct buf *b, const struct config *cfg, size_t si,
    char **specs, size_t n)
{
	const struct config_server	*s = &cfg->servers[si];
	const char			*gw = "no";
	size_t				 i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].server_index == si &&
		    !cmd_is_loopback(&cfg->tunnels[i].remote))
			gw = "clientspecified";
	buf_printf(b, "\n# ---- 2. sshd_config\n"
	    "# Append to the END of /etc/ssh/sshd_config (a Match block runs "
	    "to the next\n# Match or the end of the file), then: sshd -t && "
	    "systemctl reload ssh\n"
	    "Match User %s\n"
	    "\tAllowTcpForwarding remote\n", s->user);
	if (strcmp(gw, "no") != 0)
		buf_printf(b, "\t# A tunnel binds a non-loopback address.\n");
	buf_printf(b, "\tGatewayPorts %s\n\tPermitListen", gw);
	for (i = 0; i < n; i++)
		buf_printf(b, " %s", specs[i]);
	buf_printf(b, "%s\n", n == 0 ? " none" : "");
	buf_printf(b, "\tAllowStreamLocalForwarding no\n"
	    "\tAllowAgentForwarding no\n"
	    "\tX11Forwarding no\n"
	    "\tPermitTunnel no\n"
	    "\tPermitTTY no\n"
	    "\t# End sessions whose client vanished, releasing their ports.\n"
	    "\tClientAliveInterval 15\n"
	    "\tClientAliveCountMax 3\n"
	    "\t# Never set UnusedConnectionTimeout for this user: a session "
	    "that only\n\t# holds listeners has no open channel, so sshd "
	    "would end it and drop\n\t# every tunnel.\n");
	if (!s->reclaim_stale_port)
		buf_printf(b, "\t# With reclaim_stale_port: false you may "
		    "also forbid commands here:\n"
		    "\t# ForceCommand /bin/false\n");
}

/* Section 3: certbot for the letsencrypt tunnels of server si. */
static void
cmd_setup_certbot(struct buf *b, const struct config *cfg, size_t si,
    const char *path)
{
	const struct config_tunnel	*t;
	char				*cmd;
	size_t				 i, n = 0;

	buf_printf(b, "\n# ---- 3. TLS certificates (certbot, on %s)\n",
	    cfg->servers[si].host);
	for (i = 0; i < cfg->n_tunnels; i++) {
		t = &cfg->tunnels[i];
		if (t->server_index != si || t->nginx == NULL ||
		    t->nginx->tls == CONFIG_TLS_OFF)
			continue;
		if (t->nginx->tls == CONFIG_TLS_FILES) {
			buf_printf(b, "# tunnel %s: uses its own certificate "
			    "%s\n", t->name, t->nginx->cert);
			continue;
		}
		if (n++ == 0)
			buf_printf(b, "# After the nginx files are installed "
			    "(tunnels nginx -o /etc/nginx/conf.d/,\n# which "
			    "serves the ACME challenge until the certificate "
			    "exists):\n");
		cmd = nginx_certbot_command(t->nginx);
		buf_printf(b, "# tunnel %s\nmkdir -p %s\n%s\n", t->name,
		    t->nginx->acme_webroot, cmd);
		free(cmd);
	}
	if (n > 0)
		buf_printf(b, "# Then switch nginx to https:\ntunnels nginx -c "
		    "%s -o /etc/nginx/conf.d/ && nginx -t && systemctl reload "
		    "nginx\n", path);
	else
		buf_printf(b, "# Nothing to do: no tunnel of this server uses "
		    "tls: letsencrypt.\n");
}

/* Everything for one server; -1 when its public key cannot be found. */
static int
cmd_setup_server(struct buf *b, const struct config *cfg, size_t si,
    const char *path)
{
	const struct config_server	*s = &cfg->servers[si];
	char				**specs = NULL, *pub;
	size_t				  n, i;

	if ((pub = cmd_public_key(s)) == NULL)
		return -1;
	n = cmd_listen_specs(cfg, si, &specs);
	buf_printf(b, "# ==== tunnels server-setup for server \"%s\": "
	    "%s@%s port %d\n# (generated by tunnels %s from %s)\n\n", s->name,
	    s->user, s->host, s->port, TUNNELS_VERSION, path);
	cmd_setup_keys(b, s, specs, n, pub);
	cmd_setup_sshd(b, cfg, si, specs, n);
	cmd_setup_certbot(b, cfg, si, path);
	for (i = 0; i < n; i++)
		free(specs[i]);
	free(specs);
	free(pub);
	return 0;
}

/* tunnels server-setup: what the SSH server needs. */
int
cmd_server_setup(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "server", required_argument, NULL, CMD_OPT_SERVER },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config			*cfg = NULL;
	struct buf			 b;
	const char			*path = CONFIG_DEFAULT_PATH;
	const char			*server = NULL;
	ssize_t				 only = -1;
	size_t				 si;
	int				 ch, rc = CMD_EXIT_USAGE, first = 1;

	buf_init(&b);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case CMD_OPT_SERVER:
			server = optarg;
			break;
		case 'h':
			printf("usage: tunnels %s\n\n%s\n",
			    CMD_SERVER_SETUP_USAGE, CMD_SERVER_SETUP_HELP);
			return CMD_EXIT_OK;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	rc = CMD_EXIT_NOTCONFIGURED;
	if ((cfg = cmd_load_config(path, 0)) == NULL)
		goto out;
	rc = CMD_EXIT_USAGE;
	if (server != NULL && (only = cmd_find_server(cfg, path, server)) == -1)
		goto out;
	rc = CMD_EXIT_OK;
	for (si = 0; si < cfg->n_servers; si++) {
		if (only != -1 && (size_t)only != si)
			continue;
		if (!first)
			buf_printf(&b, "\n\n");
		first = 0;
		if (cmd_setup_server(&b, cfg, si, path) == -1)
			rc = CMD_EXIT_FAIL;
	}
	/* All or nothing: half the instructions would mislead. */
	if (rc == CMD_EXIT_OK)
		rc = cmd_print_buf(&b);
	goto out;
usage:
	fprintf(stderr, "usage: tunnels %s\n", CMD_SERVER_SETUP_USAGE);
out:
	buf_clear(&b);
	config_free(cfg);
	return rc;
}
