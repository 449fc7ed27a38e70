/*
 * `tunnels server-setup`: what the VPS needs for a server. Without
 * --script, ready to paste: the authorized_keys line restricted to
 * exactly the configured ports, an sshd_config Match block, and the
 * certbot commands for the TLS names. With --script, a POSIX sh script
 * that makes the server so when run there as root (setup_script.c).
 * The config is parsed without the filesystem checks (a first
 * server-setup has no known_hosts yet).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "cmd_common.h"
#include "cmd_setup.h"
#include "config.h"
#include "keyfile.h"
#include "nginx.h"
#include "setup_script.h"
#include "util.h"

/* Long-only options. */
enum {
	CMD_OPT_SERVER = 256,
	CMD_OPT_SCRIPT,
	CMD_OPT_HOME,
	CMD_OPT_EMAIL
};

/* What the key line carries besides the key itself. */
struct cmd_key {
	char	*pub;		/* "TYPE BASE64" */
	char	*comment;	/* the key's own comment, or NULL */
};

/*
 * A .pub file's first line, "TYPE BASE64 [COMMENT]" (checked); NULL
 * after *cause.
 */
static char *
cmd_read_pub(const char *path, char **cause)
{
	char	 line[16384];
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
	return xstrdup(line);
}

/* Split "TYPE BASE64 [COMMENT]" into k (the comment made printable). */
static void
cmd_key_split(const char *line, struct cmd_key *k)
{
	const char	*sp;
	char		*c;

	k->comment = NULL;
	if ((sp = strchr(line, ' ')) == NULL ||
	    (sp = strchr(sp + 1, ' ')) == NULL) {
		k->pub = xstrdup(line);
		return;
	}
	k->pub = xstrndup(line, (size_t)(sp - line));
	while (*sp == ' ' || *sp == '\t')
		sp++;
	if (*sp == '\0')
		return;
	/* One line of printable ASCII: it goes into authorized_keys. */
	k->comment = str_sanitize(sp, strlen(sp), 200);
	for (c = k->comment; *c != '\0'; c++)
		if (*c == '\\' || *c == '\'' || *c == '"')
			*c = '_';
}

/*
 * The identity's public key, "TYPE BASE64": from the private key file
 * (the OpenSSH format keeps it in clear, even when encrypted), else from
 * IDENTITY.pub; the comment from IDENTITY.pub when it holds the same
 * key. -1 after printing why.
 */
static int
cmd_public_key(const struct config_server *s, struct cmd_key *k)
{
	struct keyfile_info	 ki;
	struct cmd_key		 fromfile;
	char			*cause = NULL, *cause2 = NULL, *line;
	char			*pubpath;
	int			 rv = -1;

	memset(k, 0, sizeof *k);
	memset(&ki, 0, sizeof ki);
	pubpath = xasprintf("%s.pub", s->identity);
	line = cmd_read_pub(pubpath, &cause2);
	if (line != NULL)
		cmd_key_split(line, &fromfile);
	if (keyfile_inspect(s->identity, &ki, &cause) == 0 &&
	    ki.public_line != NULL) {
		k->pub = xstrdup(ki.public_line);
		/* A .pub of another key says nothing about this one. */
		if (line != NULL && strcmp(fromfile.pub, k->pub) == 0) {
			k->comment = fromfile.comment;
			fromfile.comment = NULL;
		}
	} else if (line != NULL) {
		k->pub = fromfile.pub;
		k->comment = fromfile.comment;
		fromfile.pub = fromfile.comment = NULL;
	} else {
		fprintf(stderr, "tunnels: server %s: cannot find the public "
		    "key of identity %s: %s; and %s\n", s->name, s->identity,
		    cause != NULL ? cause : "a PEM key without the public half",
		    cause2);
		goto out;
	}
	rv = 0;
out:
	if (line != NULL) {
		free(fromfile.pub);
		free(fromfile.comment);
	}
	free(line);
	free(pubpath);
	free(cause);
	free(cause2);
	keyfile_info_clear(&ki);
	return rv;
}

/* Free a cmd_key's strings. */
static void
cmd_key_clear(struct cmd_key *k)
{
	free(k->pub);
	free(k->comment);
	memset(k, 0, sizeof *k);
}

/* Section 1: the authorized_keys line(s). */
static void
cmd_setup_keys(struct buf *b, const struct config_server *s, char **specs,
    size_t n, const struct cmd_key *k, const char *tag)
{
	buf_printf(b, "# ---- 1. authorized_keys\n"
	    "# Put this line in the authorized_keys file of \"%s\" on %s\n"
	    "# (usually ~%s/.ssh/authorized_keys, mode 600), in place of "
	    "any older line\n# with the same key. It allows listening on "
	    "exactly the ports below, and no\n# PTY, agent or X11 "
	    "forwarding. Its last word, %s, marks it:\n# tunnels "
	    "server-setup --script finds and replaces it.\n", s->user,
	    s->host, s->user, tag);
	if (n == 0)
		buf_printf(b, "# No tunnel uses this server: the key may not "
		    "forward anything.\n");
	if (s->reclaim_stale_port) {
		buf_printf(b, "# reclaim_stale_port: true: after a reconnect "
		    "the daemon runs two short\n# commands (exec, no PTY) to "
		    "find and end its own stale session, which\n# still "
		    "holds the port; \"restrict\" allows that (the account "
		    "needs a shell).\n");
		setup_key_line(b, specs, n, 1, k->pub, k->comment, tag);
		buf_printf(b, "# Variant without any command execution "
		    "(command= forces /bin/false).\n# Then set "
		    "reclaim_stale_port: false: a port held by a stale "
		    "session\n# comes back only when sshd's ClientAlive ends "
		    "that session (45 s below):\n# ");
		setup_key_line(b, specs, n, 0, k->pub, k->comment, tag);
	} else {
		buf_printf(b, "# reclaim_stale_port: false: the daemon runs "
		    "no commands, so none are\n# allowed (command= forces "
		    "/bin/false); a port held by a stale session comes\n# "
		    "back when sshd's ClientAlive ends that session (45 s "
		    "below).\n");
		setup_key_line(b, specs, n, 0, k->pub, k->comment, tag);
		buf_printf(b, "# With reclaim_stale_port: true the daemon ends "
		    "its own stale session at\n# once; it needs to run two "
		    "short commands, so use this line instead:\n# ");
		setup_key_line(b, specs, n, 1, k->pub, k->comment, tag);
	}
}

/* Section 2: the sshd_config Match block. */
static void
cmd_setup_sshd(struct buf *b, const struct config *cfg, size_t si,
    char **specs, size_t n)
{
	buf_printf(b, "\n# ---- 2. sshd_config\n"
	    "# Append to the END of /etc/ssh/sshd_config (a Match block runs "
	    "to the next\n# Match or the end of the file), then: sshd -t && "
	    "systemctl reload ssh\n");
	setup_sshd_block(b, cfg, si, specs, n);
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
			    "(tunnels nginx -o /etc/nginx/conf.d,\n# which "
			    "serves the ACME challenge until the certificate "
			    "exists):\n");
		cmd = nginx_certbot_command(t->nginx);
		buf_printf(b, "# tunnel %s\nmkdir -p %s\n%s\n", t->name,
		    t->nginx->acme_webroot, cmd);
		free(cmd);
	}
	if (n > 0)
		buf_printf(b, "# Then switch nginx to https:\ntunnels nginx -c "
		    "%s -o /etc/nginx/conf.d && nginx -t && systemctl reload "
		    "nginx\n", path);
	else
		buf_printf(b, "# Nothing to do: no tunnel of this server uses "
		    "tls: letsencrypt.\n");
}

/* Everything for one server; -1 when its public key cannot be found. */
static int
cmd_setup_server(struct buf *b, const struct config *cfg, size_t si,
    const char *path, const char *home)
{
	const struct config_server	*s = &cfg->servers[si];
	struct cmd_key			 k;
	char				**specs = NULL, *tag;
	size_t				  n;

	if (cmd_public_key(s, &k) == -1)
		return -1;
	tag = setup_tag(home, s->name);
	n = setup_listen_specs(cfg, si, &specs);
	buf_printf(b, "# ==== tunnels server-setup for server \"%s\": "
	    "%s@%s port %d\n# (generated by tunnels %s from %s)\n# tunnels "
	    "server-setup --script --server %s | ssh root@%s sh\n# does all "
	    "of this on the server, and again after every change.\n\n",
	    s->name, s->user, s->host, s->port, TUNNELS_VERSION, path,
	    s->name, s->host);
	cmd_setup_keys(b, s, specs, n, &k, tag);
	cmd_setup_sshd(b, cfg, si, specs, n);
	cmd_setup_certbot(b, cfg, si, path);
	setup_specs_free(specs, n);
	free(tag);
	cmd_key_clear(&k);
	return 0;
}

/*
 * This home's default name: the host name up to its first dot, and for
 * a config other than tunnels.yaml (an instance's), "-" and its name.
 */
static char *
cmd_default_home(const char *path)
{
	char		 host[256], *name, *home;
	const char	*base;
	size_t		 len;

	if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "home");
	host[sizeof host - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	len = strlen(base);
	if (len > 5 && strcmp(base + len - 5, ".yaml") == 0)
		len -= 5;
	else if (len > 4 && strcmp(base + len - 4, ".yml") == 0)
		len -= 4;
	if (len == 0 || (len == 7 && strncmp(base, "tunnels", 7) == 0))
		name = xstrdup(host);
	else
		name = xasprintf("%s-%.*s", host, (int)len, base);
	home = setup_home_from(name);
	free(name);
	return home;
}

/*
 * --script: the converging script for one server, only (-1: the config's
 * only server); the exit code.
 */
static int
cmd_setup_script(const struct config *cfg, ssize_t only, const char *path,
    const char *home, const char *email)
{
	struct setup_script_opts	 so;
	struct cmd_key			 k;
	struct buf			 b, warn;
	size_t				 si;
	int				 rc;

	/* The script runs on one server: it must know which. */
	if (only == -1 && cfg->n_servers != 1) {
		fprintf(stderr, "tunnels: %s has %zu servers: the script is "
		    "for one, name it with --server (", path, cfg->n_servers);
		for (si = 0; si < cfg->n_servers; si++)
			fprintf(stderr, "%s%s", si > 0 ? ", " : "",
			    cfg->servers[si].name);
		fprintf(stderr, ")\n");
		return CMD_EXIT_USAGE;
	}
	si = only == -1 ? 0 : (size_t)only;
	if (cmd_public_key(&cfg->servers[si], &k) == -1)
		return CMD_EXIT_FAIL;
	memset(&so, 0, sizeof so);
	so.version = TUNNELS_VERSION;
	so.config_path = path;
	so.home = home;
	so.pub = k.pub;
	so.comment = k.comment;
	so.email = email;
	buf_init(&b);
	buf_init(&warn);
	setup_script_render(cfg, si, &so, &b, &warn);
	rc = cmd_print_buf(&b);
	cmd_print_warnings(&warn);
	buf_clear(&warn);
	buf_clear(&b);
	cmd_key_clear(&k);
	return rc;
}

/* The paste-ready text for every server, or only; the exit code. */
static int
cmd_setup_paste(const struct config *cfg, ssize_t only, const char *path,
    const char *home)
{
	struct buf	b;
	size_t		si;
	int		rc = CMD_EXIT_OK, first = 1;

	buf_init(&b);
	for (si = 0; si < cfg->n_servers; si++) {
		if (only != -1 && (size_t)only != si)
			continue;
		if (!first)
			buf_printf(&b, "\n\n");
		first = 0;
		if (cmd_setup_server(&b, cfg, si, path, home) == -1)
			rc = CMD_EXIT_FAIL;
	}
	/* All or nothing: half the instructions would mislead. */
	if (rc == CMD_EXIT_OK)
		rc = cmd_print_buf(&b);
	buf_clear(&b);
	return rc;
}

/* 1 if an email address is safe to hand to certbot as one argument. */
static int
cmd_email_ok(const char *s)
{
	const char	*at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strlen(s) > 254)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || strchr("'\"\\`$;&|<>()", *s))
			return 0;
	return 1;
}

/* tunnels server-setup: what the SSH server needs. */
int
cmd_server_setup(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "server", required_argument, NULL, CMD_OPT_SERVER },
		{ "script", no_argument, NULL, CMD_OPT_SCRIPT },
		{ "home", required_argument, NULL, CMD_OPT_HOME },
		{ "email", required_argument, NULL, CMD_OPT_EMAIL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config			*cfg = NULL;
	const char			*path = CONFIG_DEFAULT_PATH;
	const char			*server = NULL, *email = NULL;
	char				*home = NULL;
	ssize_t				 only = -1;
	int				 ch, rc = CMD_EXIT_USAGE;
	int				 script = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case CMD_OPT_SERVER:
			server = optarg;
			break;
		case CMD_OPT_SCRIPT:
			script = 1;
			break;
		case CMD_OPT_HOME:
			if (!setup_home_ok(optarg)) {
				fprintf(stderr, "tunnels: invalid --home \"%s\": "
				    "1-%d of A-Z a-z 0-9 . _ -, not starting "
				    "with a dot\n", optarg, SETUP_HOME_MAX);
				goto usage;
			}
			free(home);
			home = xstrdup(optarg);
			break;
		case CMD_OPT_EMAIL:
			if (!cmd_email_ok(optarg)) {
				fprintf(stderr, "tunnels: invalid --email "
				    "\"%s\"\n", optarg);
				goto usage;
			}
			email = optarg;
			break;
		case 'h':
			cmd_help_print(CMD_SERVER_SETUP_USAGE,
			    CMD_SERVER_SETUP_HELP);
			rc = CMD_EXIT_OK;
			goto out;
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
	if (home == NULL)
		home = cmd_default_home(path);
	if (script)
		rc = cmd_setup_script(cfg, only, path, home, email);
	else
		rc = cmd_setup_paste(cfg, only, path, home);
	goto out;
usage:
	fprintf(stderr, "usage: tunnels %s\n", CMD_SERVER_SETUP_USAGE);
out:
	free(home);
	config_free(cfg);
	return rc;
}
