/*
 * The server's side of a home's config as text: permitlisten specs, the
 * authorized_keys line, the sshd Match block, and the converging script
 * of `tunnels server-setup --script`. The script is this home's values
 * and files (generated here: variables, here-documents, and small
 * functions that pick a letsencrypt tunnel's blocks by whether its
 * certificate exists on the server) followed by the fixed library
 * src/setup_script.sh, which the build turns into setup_script_lib.
 * The nginx files come from the nginx renderer (nginx.c), never from a
 * second generator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "knownhosts.h"
#include "nginx.h"
#include "setup_script.h"
#include "setup_script_sh.h"
#include "util.h"

/* A remote as permitlisten/PermitListen spell it: "[::1]:4001", "*". */
static char *
setup_listen_spec(const struct addr *a)
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

/* The listen specs of server si's tunnels, in config order, deduped. */
size_t
setup_listen_specs(const struct config *cfg, size_t si, char ***out)
{
	char	**v = NULL, *s;
	size_t	  n = 0, i, j;

	for (i = 0; i < cfg->n_tunnels; i++) {
		if (cfg->tunnels[i].server_index != si)
			continue;
		s = setup_listen_spec(&cfg->tunnels[i].remote);
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

/* Free what setup_listen_specs returned. */
void
setup_specs_free(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* 1 for the bytes a file name or tag may hold as they are. */
static int
setup_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* s with every byte outside [A-Za-z0-9._-] replaced by '-' (malloc'd). */
static char *
setup_clean(const char *s)
{
	char	*c = xstrdup(s), *p;

	for (p = c; *p != '\0'; p++)
		if (!setup_name_char(*p))
			*p = '-';
	return c;
}

/* 1 if s is a usable home name. */
int
setup_home_ok(const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > SETUP_HOME_MAX || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!setup_name_char(s[i]))
			return 0;
	return 1;
}

/* A home name from a host name: cleaned, cut to the maximum. */
char *
setup_home_from(const char *s)
{
	char	*c = setup_clean(s);

	if (strlen(c) > SETUP_HOME_MAX)
		c[SETUP_HOME_MAX] = '\0';
	if (c[0] == '.' || c[0] == '\0') {
		free(c);
		c = xstrdup("home");
	}
	return c;
}

/* "tunnels:HOME/SERVER". */
char *
setup_tag(const char *home, const char *server)
{
	char	*s = setup_clean(server), *t;

	t = xasprintf("tunnels:%s/%s", home, s);
	free(s);
	return t;
}

/* "tunnels-HOME-SERVER". */
char *
setup_stem(const char *home, const char *server)
{
	char	*s = setup_clean(server), *t;

	t = xasprintf("tunnels-%s-%s", home, s);
	free(s);
	return t;
}

/* The authorized_keys line (see setup_script.h). */
void
setup_key_line(struct buf *b, char **specs, size_t n, int exec,
    const char *pub, const char *comment, const char *tag)
{
	size_t	i;

	/* With no tunnel, "restrict" alone forbids every forward. */
	buf_printf(b, "restrict%s%s", n > 0 ? ",port-forwarding" : "",
	    exec ? "" : ",command=\"/bin/false\"");
	for (i = 0; i < n; i++)
		buf_printf(b, ",permitlisten=\"%s\"", specs[i]);
	buf_printf(b, " %s", pub);
	if (comment != NULL && *comment != '\0')
		buf_printf(b, " %s", comment);
	buf_printf(b, " %s\n", tag);
}

/* 1 if sshd binds the address on loopback only with GatewayPorts no. */
static int
setup_is_loopback(const struct addr *a)
{
	return strncmp(a->host, "127.", 4) == 0 ||
	    strcmp(a->host, "::1") == 0 || strcmp(a->host, "localhost") == 0;
}

/* The Match User block. */
void
setup_sshd_block(struct buf *b, const struct config *cfg, size_t si,
    char **specs, size_t n)
{
	const struct config_server	*s = &cfg->servers[si];
	const char			*gw = "no";
	size_t				 i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].server_index == si &&
		    !setup_is_loopback(&cfg->tunnels[i].remote))
			gw = "clientspecified";
	buf_printf(b, "Match User %s\n"
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

/* s as one single-quoted sh word. */
static void
setup_quote(struct buf *b, const char *s)
{
	buf_printf(b, "'");
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			buf_printf(b, "'\\''");
		else
			buf_append(b, s, 1);
	}
	buf_printf(b, "'");
}

/* "NAME='VALUE'\n". */
static void
setup_var(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, "%s=", name);
	setup_quote(b, value != NULL ? value : "");
	buf_printf(b, "\n");
}

/* 1 if delim is alone on a line of text (it would end the here-doc). */
static int
setup_has_line(const char *text, const char *delim)
{
	size_t		 n = strlen(delim);
	const char	*p;

	for (p = text; p != NULL && *p != '\0';
	    p = (p = strchr(p, '\n')) != NULL ? p + 1 : NULL)
		if (strncmp(p, delim, n) == 0 &&
		    (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

/* A command writing text to $WORK/name: a here-doc no line can end. */
static void
setup_file(struct buf *b, const char *name, const char *text)
{
	char	*delim = NULL;
	size_t	 len = strlen(text);
	int	 i;

	if (len == 0) {
		buf_printf(b, ": >\"$WORK/%s\"\n", name);
		return;
	}
	for (i = 0; delim == NULL || setup_has_line(text, delim); i++) {
		free(delim);
		delim = xasprintf("TUNNELS_EOF_%d", i);
	}
	buf_printf(b, "cat >\"$WORK/%s\" <<'%s'\n%s%s%s\n", name, delim, text,
	    text[len - 1] == '\n' ? "" : "\n", delim);
	free(delim);
}

/* cert_exists callbacks: render as if the certificate did (not) exist. */
static int
setup_cert_yes(const char *path, void *arg)
{
	(void)path;
	(void)arg;
	return 1;
}

static int
setup_cert_no(const char *path, void *arg)
{
	(void)path;
	(void)arg;
	return 0;
}

/* 1 if any name of a letsencrypt tunnel is a wildcard (DNS-01 only). */
static int
setup_wildcard(const struct config_nginx *n)
{
	size_t	i;

	for (i = 0; i < n->n_server_names; i++)
		if (n->server_names[i][0] == '*')
			return 1;
	return 0;
}

/* b's text as $WORK/name, then b emptied. */
static void
setup_file_buf(struct buf *b, const char *name, struct buf *text)
{
	setup_file(b, name, buf_cstr(text));
	buf_clear(text);
}

/* 1 if tunnel i is the first of server si's with its acme_webroot. */
static int
setup_webroot_first(const struct config *cfg, size_t si, size_t i)
{
	const char	*w = cfg->tunnels[i].nginx->acme_webroot;
	size_t		 j;

	for (j = 0; j < i; j++)
		if (cfg->tunnels[j].server_index == si &&
		    cfg->tunnels[j].nginx != NULL &&
		    strcmp(cfg->tunnels[j].nginx->acme_webroot, w) == 0)
			return 0;
	return 1;
}

/* One rendering of tunnel t's blocks, cert_exists answering as given. */
static void
setup_nginx_file(const struct config *cfg, const struct config_tunnel *t,
    struct nginx_options *o, int (*cert_exists)(const char *, void *),
    struct buf *warn, struct buf *b, const char *name)
{
	struct buf	part;

	buf_init(&part);
	o->cert_exists = cert_exists;
	nginx_render_tunnel(cfg, t, o, &part, warn);
	o->cert_exists = NULL;
	setup_file_buf(b, name, &part);
}

/* The k-th nginx tunnel without letsencrypt: one file, always used. */
static void
setup_nginx_fixed(const struct config *cfg, const struct config_tunnel *t,
    size_t k, struct nginx_options *o, struct buf *b, struct buf *fn,
    struct buf *warn)
{
	char	*name = xasprintf("nginx.%zu", k);

	setup_nginx_file(cfg, t, o, NULL, warn, b, name);
	buf_printf(fn, "\tcat \"$WORK/%s\"\n", name);
	free(name);
}

/* The t_certs line asking for tunnel t's certificate at cert. */
static void
setup_cert_line(struct buf *certs, const struct config_tunnel *t,
    const char *cert)
{
	const struct config_nginx	*n = t->nginx;
	char				*cmd, *cn;
	size_t				 j;

	cmd = nginx_certbot_command(n);
	cn = nginx_cert_name(n);
	buf_printf(certs, "\t%s ", setup_wildcard(n) ? "t_cert_manual" :
	    "t_cert");
	setup_quote(certs, t->name);
	buf_printf(certs, " ");
	setup_quote(certs, cert);
	buf_printf(certs, " ");
	setup_quote(certs, n->acme_webroot);
	buf_printf(certs, " ");
	setup_quote(certs, cn);
	buf_printf(certs, " ");
	setup_quote(certs, cmd);
	for (j = 0; j < n->n_server_names; j++) {
		buf_printf(certs, " -d ");
		setup_quote(certs, n->server_names[j]);
	}
	buf_printf(certs, "\n");
	free(cn);
	free(cmd);
}

/*
 * The k-th nginx tunnel with letsencrypt: both variants, and the line of
 * t_nginx_site that lets the server's own files choose.
 */
static void
setup_nginx_letsencrypt(const struct config *cfg,
    const struct config_tunnel *t, size_t k, struct nginx_options *o,
    struct buf *b, struct buf *fn, struct buf *certs)
{
	char	*name, *cert, *key;

	nginx_cert_paths(t->nginx, &cert, &key);
	name = xasprintf("nginx.%zu.tls", k);
	setup_nginx_file(cfg, t, o, setup_cert_yes, NULL, b, name);
	free(name);
	name = xasprintf("nginx.%zu.pending", k);
	setup_nginx_file(cfg, t, o, setup_cert_no, NULL, b, name);
	free(name);
	buf_printf(fn, "\tif [ -e ");
	setup_quote(fn, cert);
	buf_printf(fn, " ]; then cat \"$WORK/nginx.%zu.tls\"; "
	    "else cat \"$WORK/nginx.%zu.pending\"; fi\n", k, k);
	setup_cert_line(certs, t, cert);
	free(cert);
	free(key);
}

/* The shared default server and server si's head, as t_data's files. */
static void
setup_nginx_head(const struct config *cfg, size_t si,
    struct nginx_options *o, struct buf *b)
{
	struct buf	part;

	buf_init(&part);
	nginx_render_shared_default(o, &part);
	setup_file_buf(b, "nginx.default", &part);
	nginx_render_server_head(cfg, si, o, &part);
	setup_file_buf(b, "nginx.head", &part);
}

/*
 * The nginx parts: t_data's files (the head, each tunnel's blocks, both
 * variants of a letsencrypt tunnel's) into b, and the t_nginx_site,
 * t_webroots and t_certs functions into fn.
 */
static void
setup_nginx_parts(const struct config *cfg, size_t si,
    struct nginx_options *o, struct buf *b, struct buf *fn,
    struct buf *warn)
{
	const struct config_tunnel	*t;
	struct buf			 webroots, certs;
	size_t				 i, k;

	buf_init(&webroots);
	buf_init(&certs);
	setup_nginx_head(cfg, si, o, b);
	buf_printf(fn, "t_nginx_site() {\n\tcat \"$WORK/nginx.head\"\n");
	for (i = 0, k = 0; i < cfg->n_tunnels; i++) {
		t = &cfg->tunnels[i];
		if (t->server_index != si || t->nginx == NULL)
			continue;
		k++;
		if (setup_webroot_first(cfg, si, i)) {
			buf_printf(&webroots, "\tt_webroot ");
			setup_quote(&webroots, t->nginx->acme_webroot);
			buf_printf(&webroots, "\n");
		}
		if (t->nginx->tls == CONFIG_TLS_LETSENCRYPT)
			setup_nginx_letsencrypt(cfg, t, k, o, b, fn, &certs);
		else
			setup_nginx_fixed(cfg, t, k, o, b, fn, warn);
	}
	if (k == 0) {
		setup_file(b, "nginx.none",
		    "\n# (no tunnel with an nginx: section)\n");
		buf_printf(fn, "\tcat \"$WORK/nginx.none\"\n");
	}
	buf_printf(fn, "}\n\nt_webroots() {\n\t:\n%s}\n\n"
	    "t_certs() {\n\t:\n%s}\n", buf_cstr(&webroots), buf_cstr(&certs));
	buf_clear(&webroots);
	buf_clear(&certs);
}

/* The key blob of an OpenSSH public key line "TYPE BLOB [COMMENT]". */
static char *
setup_key_blob(const char *pub)
{
	char	*blob = xstrdup(pub), *sp;

	if ((sp = strchr(blob, ' ')) != NULL)
		memmove(blob, sp + 1, strlen(sp + 1) + 1);
	blob[strcspn(blob, " ")] = '\0';
	return blob;
}

/* 1 if any of server si's tunnels has an nginx: section. */
static int
setup_any_nginx(const struct config *cfg, size_t si)
{
	size_t	i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].server_index == si &&
		    cfg->tunnels[i].nginx != NULL)
			return 1;
	return 0;
}

/* The script's first lines: what it is, how to run it. */
static void
setup_script_header(const struct config_server *s,
    const struct setup_script_opts *so, struct buf *out)
{
	buf_printf(out, "#!/bin/sh\n"
	    "# tunnels server-setup --script: what home \"%s\" needs on "
	    "server \"%s\"\n# (account %s on %s port %d), generated by "
	    "tunnels %s from %s.\n"
	    "# Run it as root on that server; it changes only what "
	    "differs, and prints\n# the server's host keys (known_hosts "
	    "lines) on standard output:\n"
	    "#   tunnels server-setup --script | ssh root@%s sh > "
	    "known_hosts.new\n"
	    "set -eu\n\n", so->home, s->name, s->user, s->host, s->port,
	    so->version, so->config_path, s->host);
}

/* The script's variables: this home's values for server si. */
static void
setup_script_values(const struct config *cfg, size_t si,
    const struct setup_script_opts *so, const char *tag, struct buf *out)
{
	const struct config_server	*s = &cfg->servers[si];
	char				*stem, *hostspec, *site, *blob;

	stem = setup_stem(so->home, s->name);
	hostspec = knownhosts_name(s->host, s->port);
	site = xasprintf("/etc/nginx/conf.d/%s.conf", stem);
	blob = setup_key_blob(so->pub);
	buf_printf(out, "# ---- this home's values\n");
	setup_var(out, "T_TAG", tag);
	setup_var(out, "T_USER", s->user);
	setup_var(out, "T_KEYBLOB", blob);
	setup_var(out, "T_STEM", stem);
	setup_var(out, "T_HOSTSPEC", hostspec);
	setup_var(out, "T_NGINX", setup_any_nginx(cfg, si) ? "1" : "0");
	setup_var(out, "T_NGINX_FILE", site);
	setup_var(out, "T_EMAIL", so->email);
	free(blob);
	free(site);
	free(hostspec);
	free(stem);
}

/* t_data's sshd files: the authorized_keys line and the Match block. */
static void
setup_script_sshd(const struct config *cfg, size_t si,
    const struct setup_script_opts *so, const char *tag, struct buf *data)
{
	struct buf	 line;
	char		**specs = NULL;
	size_t		 n;

	buf_init(&line);
	n = setup_listen_specs(cfg, si, &specs);
	setup_key_line(&line, specs, n, cfg->servers[si].reclaim_stale_port,
	    so->pub, so->comment, tag);
	setup_file_buf(data, "key.line", &line);
	setup_sshd_block(&line, cfg, si, specs, n);
	setup_file_buf(data, "sshd.block", &line);
	setup_specs_free(specs, n);
}

/* t_data's nginx files and the functions that use them. */
static void
setup_script_nginx(const struct config *cfg, size_t si,
    const struct setup_script_opts *so, struct buf *data, struct buf *fn,
    struct buf *warn)
{
	const struct config_server	*s = &cfg->servers[si];
	struct nginx_options		 o;
	char				*regen;

	nginx_options_init(&o);
	o.version = so->version;
	o.config_path = so->config_path;
	regen = xasprintf("tunnels server-setup --script -c %s --server %s "
	    "--home %s | ssh root@%s sh", so->config_path, s->name, so->home,
	    s->host);
	o.regen = regen;
	setup_nginx_parts(cfg, si, &o, data, fn, warn);
	free(regen);
}

/* The script (see setup_script.h). */
void
setup_script_render(const struct config *cfg, size_t si,
    const struct setup_script_opts *so, struct buf *out, struct buf *warn)
{
	struct buf	 data, fn;
	char		*tag;

	buf_init(&data);
	buf_init(&fn);
	tag = setup_tag(so->home, cfg->servers[si].name);
	setup_script_header(&cfg->servers[si], so, out);
	setup_script_values(cfg, si, so, tag, out);
	/* The files, written into $WORK by t_data. */
	setup_script_sshd(cfg, si, so, tag, &data);
	setup_script_nginx(cfg, si, so, &data, &fn, warn);
	buf_printf(out, "\n# ---- this home's files\nt_data() {\n%s}\n\n%s\n",
	    buf_cstr(&data), buf_cstr(&fn));
	buf_printf(out, "%s", setup_script_lib);
	free(tag);
	buf_clear(&fn);
	buf_clear(&data);
}
