/*
 * The nginx generator (DESIGN.md 5.8): one server {} per tunnel with an
 * nginx: section, proxying to the tunnel's listener on the VPS loopback,
 * with the forwarding headers, WebSocket upgrades and TLS (certbot paths
 * or given files). Pure: it only appends text to buffers, in config order,
 * so the same config always gives the same bytes (golden-file tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "nginx.h"
#include "util.h"

#define NGINX_ACME_PATH		"/.well-known/acme-challenge/"
#define NGINX_LE_LIVE		"/etc/letsencrypt/live"

/* Fill in the defaults. */
void
nginx_options_init(struct nginx_options *o)
{
	memset(o, 0, sizeof *o);
	o->http_port = NGINX_HTTP_PORT;
	o->https_port = NGINX_HTTPS_PORT;
}

/* 1 if any tunnel of the config terminates TLS in nginx. */
int
nginx_any_tls(const struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (cfg->tunnels[i].nginx != NULL &&
		    cfg->tunnels[i].nginx->tls != CONFIG_TLS_OFF)
			return 1;
	return 0;
}

/* The certbot lineage name: the first server_name without "*.". */
char *
nginx_cert_name(const struct config_nginx *n)
{
	const char	*s = n->server_names[0];

	/* certbot names a wildcard's lineage after the bare domain. */
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	return xstrdup(s);
}

/* The certificate and key nginx uses for a TLS tunnel (malloc'd). */
void
nginx_cert_paths(const struct config_nginx *n, char **cert, char **key)
{
	char	*name;

	if (n->tls == CONFIG_TLS_FILES) {
		*cert = xstrdup(n->cert);
		*key = xstrdup(n->key);
		return;
	}
	name = nginx_cert_name(n);
	*cert = xasprintf(NGINX_LE_LIVE "/%s/fullchain.pem", name);
	*key = xasprintf(NGINX_LE_LIVE "/%s/privkey.pem", name);
	free(name);
}

/* proxy_pass target of a tunnel; NULL when the port is server-chosen. */
char *
nginx_upstream(const struct config_tunnel *t)
{
	const char	*host = t->remote.host;

	if (t->remote.port == 0)
		return NULL;
	/*
	 * A wildcard bind also listens on loopback; connecting to the
	 * wildcard address itself only works by accident on Linux.
	 */
	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	if (strchr(host, ':') != NULL)
		return xasprintf("[%s]:%d", host, t->remote.port);
	return xasprintf("%s:%d", host, t->remote.port);
}

/* The certbot command that obtains a letsencrypt tunnel's certificate. */
static void
nginx_certbot(const struct config_nginx *n, struct buf *out)
{
	char	*name = nginx_cert_name(n);
	size_t	 i;
	int	 wild = 0;

	for (i = 0; i < n->n_server_names; i++)
		if (n->server_names[i][0] == '*')
			wild = 1;
	/* Let's Encrypt issues wildcards only over the DNS-01 challenge. */
	if (wild)
		buf_printf(out, "certbot certonly --manual "
		    "--preferred-challenges dns");
	else
		buf_printf(out, "certbot certonly --webroot -w %s",
		    n->acme_webroot);
	buf_printf(out, " --cert-name %s", name);
	for (i = 0; i < n->n_server_names; i++)
		buf_printf(out, " -d %s", n->server_names[i]);
	buf_printf(out, " --deploy-hook \"systemctl reload nginx\"");
	free(name);
}

/* The certbot command as a string (for server-setup). */
char *
nginx_certbot_command(const struct config_nginx *n)
{
	struct buf	b;
	char		*s;

	buf_init(&b);
	nginx_certbot(n, &b);
	s = xstrdup(buf_cstr(&b));
	buf_clear(&b);
	return s;
}

/* The header comment: generated, from where, how to regenerate. */
static void
nginx_header(const struct nginx_options *o, struct buf *out)
{
	const char	*path = o->config_path != NULL ? o->config_path :
			    CONFIG_DEFAULT_PATH;

	buf_printf(out, NGINX_HEADER_MARK "%s from %s -- do not edit;\n",
	    o->version != NULL ? o->version : "", path);
	if (o->regen != NULL) {
		buf_printf(out, "# regenerate with: %s\n", o->regen);
		return;
	}
	buf_printf(out, "# regenerate with: tunnels nginx -c %s", path);
	if (o->out_dir != NULL)
		buf_printf(out, " -o %s", o->out_dir);
	else if (o->server != NULL)
		buf_printf(out, " --server %s", o->server);
	if (o->http_port != NGINX_HTTP_PORT)
		buf_printf(out, " --http-port %d", o->http_port);
	if (o->https_port != NGINX_HTTPS_PORT)
		buf_printf(out, " --https-port %d", o->https_port);
	buf_printf(out, "\n");
}

/* The two listen lines (IPv4 and IPv6) of one port. */
static void
nginx_listen(struct buf *out, int port, int tls)
{
	const char	*opts = tls ? " ssl http2" : "";

	buf_printf(out, "\tlisten %d%s;\n", port, opts);
	buf_printf(out, "\tlisten [::]:%d%s;\n", port, opts);
}

/* The server_name line. */
static void
nginx_server_name(const struct config_nginx *n, struct buf *out)
{
	size_t	i;

	buf_printf(out, "\tserver_name");
	for (i = 0; i < n->n_server_names; i++)
		buf_printf(out, " %s", n->server_names[i]);
	buf_printf(out, ";\n");
}

/* The ACME http-01 location, served from the webroot. */
static void
nginx_acme(const struct config_nginx *n, struct buf *out)
{
	buf_printf(out, "\tlocation ^~ " NGINX_ACME_PATH " {\n"
	    "\t\troot %s;\n"
	    "\t}\n", n->acme_webroot);
}

/* The proxying location of a tunnel. */
static void
nginx_proxy(const struct config_nginx *n, const char *upstream,
    struct buf *out)
{
	const char	*timeout = n->websocket ? "3600s" : "60s";

	buf_printf(out, "\tlocation / {\n"
	    "\t\tproxy_pass http://%s;\n"
	    "\t\tproxy_http_version 1.1;\n"
	    "\t\tproxy_set_header Host $host;\n"
	    "\t\tproxy_set_header X-Real-IP $remote_addr;\n"
	    "\t\tproxy_set_header X-Forwarded-For "
	    "$proxy_add_x_forwarded_for;\n"
	    "\t\tproxy_set_header X-Forwarded-Proto $scheme;\n"
	    "\t\tproxy_set_header X-Forwarded-Host $host;\n", upstream);
	if (n->websocket)
		buf_printf(out, "\t\tproxy_set_header Upgrade $http_upgrade;\n"
		    "\t\tproxy_set_header Connection $connection_upgrade;\n");
	/* An idle WebSocket must outlive the default 60 s read timeout. */
	buf_printf(out, "\t\tproxy_connect_timeout 5s;\n"
	    "\t\tproxy_read_timeout %s;\n"
	    "\t\tproxy_send_timeout %s;\n"
	    "\t}\n", timeout, timeout);
}

/* The port-80 block of a TLS tunnel: ACME challenge, else redirect. */
static void
nginx_redirect_block(const struct config_nginx *n,
    const struct nginx_options *o, struct buf *out)
{
	buf_printf(out, "server {\n");
	nginx_listen(out, o->http_port, 0);
	nginx_server_name(n, out);
	buf_printf(out, "\n");
	nginx_acme(n, out);
	buf_printf(out, "\n\tlocation / {\n");
	if (o->https_port == NGINX_HTTPS_PORT)
		buf_printf(out, "\t\treturn 301 https://$host$request_uri;\n");
	else
		buf_printf(out, "\t\treturn 301 https://$host:%d"
		    "$request_uri;\n", o->https_port);
	buf_printf(out, "\t}\n}\n");
}

/*
 * A letsencrypt tunnel whose certificate does not exist yet: a 443 block
 * would make `nginx -t` fail, and without a reload certbot could never
 * answer its challenge. Serve only the challenge until it has run.
 */
static void
nginx_pending_block(const struct config_tunnel *t,
    const struct nginx_options *o, const char *cert, struct buf *out,
    struct buf *warn)
{
	const struct config_nginx	*n = t->nginx;

	buf_printf(out, "# TLS pending: no certificate yet at\n# %s;\n"
	    "# until then only the ACME challenge is served. Get it with\n"
	    "#   ", cert);
	nginx_certbot(n, out);
	buf_printf(out, "\n# then regenerate this file (see the top) and "
	    "reload nginx.\n");
	buf_printf(out, "server {\n");
	nginx_listen(out, o->http_port, 0);
	nginx_server_name(n, out);
	buf_printf(out, "\n");
	nginx_acme(n, out);
	buf_printf(out, "\n\tlocation / {\n\t\treturn 503;\n\t}\n}\n");
	if (warn != NULL) {
		buf_printf(warn, "tunnel %s: %s does not exist yet: serving "
		    "only the ACME challenge on port %d; run: ", t->name, cert,
		    o->http_port);
		nginx_certbot(n, warn);
		buf_printf(warn, " and regenerate\n");
	}
}

/* The server blocks of one tunnel (no header). */
void
nginx_render_tunnel(const struct config *cfg, const struct config_tunnel *t,
    const struct nginx_options *o, struct buf *out, struct buf *warn)
{
	const struct config_nginx	*n = t->nginx;
	char				*upstream, *cert = NULL, *key = NULL;
	char				 remote[ADDR_TEXT_MAX];

	if (n == NULL)
		return;
	addr_format(&t->remote, remote, sizeof remote);
	if ((upstream = nginx_upstream(t)) == NULL) {
		/* The server picks the port at each connect: unknowable. */
		buf_printf(out, "\n# tunnel %s: skipped: remote %s lets the "
		    "server choose the port,\n# which a static proxy_pass "
		    "cannot follow; give it a fixed port.\n", t->name, remote);
		if (warn != NULL)
			buf_printf(warn, "tunnel %s: skipped: remote port 0 "
			    "cannot be proxied by a static nginx config; give "
			    "it a fixed port\n", t->name);
		return;
	}
	buf_printf(out, "\n# tunnel %s (server %s): %s -> %s on the server\n",
	    t->name, cfg->servers[t->server_index].name,
	    n->tls != CONFIG_TLS_OFF ? "https" : "http", upstream);
	if (n->tls == CONFIG_TLS_OFF) {
		buf_printf(out, "server {\n");
		nginx_listen(out, o->http_port, 0);
		nginx_server_name(n, out);
		if (n->client_max_body_size != NULL)
			buf_printf(out, "\tclient_max_body_size %s;\n",
			    n->client_max_body_size);
		/* Lets certbot --webroot prove the names before TLS is on. */
		buf_printf(out, "\n");
		nginx_acme(n, out);
		buf_printf(out, "\n");
		nginx_proxy(n, upstream, out);
		buf_printf(out, "}\n");
		goto out;
	}
	nginx_cert_paths(n, &cert, &key);
	if (n->tls == CONFIG_TLS_LETSENCRYPT && o->cert_exists != NULL &&
	    !o->cert_exists(cert, o->cert_arg)) {
		nginx_pending_block(t, o, cert, out, warn);
		goto out;
	}
	buf_printf(out, "server {\n");
	nginx_listen(out, o->https_port, 1);
	nginx_server_name(n, out);
	buf_printf(out, "\n\tssl_certificate %s;\n"
	    "\tssl_certificate_key %s;\n"
	    "\tssl_protocols TLSv1.2 TLSv1.3;\n", cert, key);
	if (n->client_max_body_size != NULL)
		buf_printf(out, "\tclient_max_body_size %s;\n",
		    n->client_max_body_size);
	buf_printf(out, "\n");
	nginx_proxy(n, upstream, out);
	buf_printf(out, "}\n\n");
	nginx_redirect_block(n, o, out);
out:
	free(cert);
	free(key);
	free(upstream);
}

/* The $connection_upgrade map (WebSocket: pass Upgrade, else close). */
static void
nginx_map(struct buf *out)
{
	buf_printf(out, "\n# WebSocket: forward \"Connection: upgrade\" only "
	    "when the client asks for it.\n"
	    "map $http_upgrade $connection_upgrade {\n"
	    "\tdefault upgrade;\n"
	    "\t'' close;\n"
	    "}\n");
}

/*
 * The catch-all servers: unknown Host names never reach a tunnel. They
 * are not default_server and have no server_name, so they never clash
 * with a default server someone else declared (Debian's own default
 * site, another config's): this file sorts first in conf.d, so they are
 * nginx's default for their ports unless another file names one, and
 * then that one answers unknown names. tls: also the 443 catch-all.
 */
static void
nginx_defaults(int tls, const struct nginx_options *o, struct buf *out)
{
	buf_printf(out, "\n# Unknown Host: close the connection without an "
	    "answer (444). Not\n# default_server: a default server declared "
	    "elsewhere (Debian's default\n# site) answers unknown names "
	    "instead, and nothing clashes.\n"
	    "server {\n");
	nginx_listen(out, o->http_port, 0);
	buf_printf(out, "\treturn 444;\n}\n");
	if (!tls)
		return;
	/* No certificate needed: the handshake itself is refused. */
	buf_printf(out, "\n# Unknown TLS name (SNI): refuse the handshake.\n"
	    "server {\n");
	nginx_listen(out, o->https_port, 1);
	buf_printf(out, "\tssl_reject_handshake on;\n}\n");
}

/* 00-tunnels-default.conf. */
void
nginx_render_default(const struct config *cfg, const struct nginx_options *o,
    struct buf *out)
{
	nginx_header(o, out);
	nginx_map(out);
	nginx_defaults(nginx_any_tls(cfg), o, out);
}

/* 00-tunnels-default.conf as several configs share it (no config named). */
void
nginx_render_shared_default(const struct nginx_options *o, struct buf *out)
{
	buf_printf(out, NGINX_HEADER_MARK "%s -- do not edit; shared by every "
	    "tunnels config\n# on this server (tunnels server-setup --script "
	    "writes the same bytes for each).\n",
	    o->version != NULL ? o->version : "");
	nginx_map(out);
	nginx_defaults(1, o, out);
}

/* The blocks of every nginx tunnel of server si. */
static size_t
nginx_server_blocks(const struct config *cfg, size_t si,
    const struct nginx_options *o, struct buf *out, struct buf *warn)
{
	size_t	i, n = 0;

	for (i = 0; i < cfg->n_tunnels; i++) {
		if (cfg->tunnels[i].server_index != si ||
		    cfg->tunnels[i].nginx == NULL)
			continue;
		nginx_render_tunnel(cfg, &cfg->tunnels[i], o, out, warn);
		n++;
	}
	return n;
}

/* The header of a server's file. */
void
nginx_render_server_head(const struct config *cfg, size_t si,
    const struct nginx_options *o, struct buf *out)
{
	nginx_header(o, out);
	buf_printf(out, "# Server %s (%s): its tunnels with an nginx: "
	    "section.\n", cfg->servers[si].name, cfg->servers[si].host);
}

/* tunnels-<server>.conf. */
void
nginx_render_server(const struct config *cfg, size_t si,
    const struct nginx_options *o, struct buf *out, struct buf *warn)
{
	nginx_render_server_head(cfg, si, o, out);
	/* An empty file still replaces blocks of tunnels since removed. */
	if (nginx_server_blocks(cfg, si, o, out, warn) == 0)
		buf_printf(out, "\n# (no tunnel with an nginx: section)\n");
}

/* Everything as one text, for stdout. */
void
nginx_render(const struct config *cfg, const struct nginx_options *o,
    struct buf *out, struct buf *warn)
{
	size_t	si;

	nginx_header(o, out);
	nginx_map(out);
	nginx_defaults(nginx_any_tls(cfg), o, out);
	for (si = 0; si < cfg->n_servers; si++) {
		if (o->server != NULL &&
		    strcmp(cfg->servers[si].name, o->server) != 0)
			continue;
		buf_printf(out, "\n# ---- server %s (%s)\n",
		    cfg->servers[si].name, cfg->servers[si].host);
		if (nginx_server_blocks(cfg, si, o, out, warn) == 0)
			buf_printf(out, "\n# (no tunnel with an nginx: "
			    "section)\n");
	}
}
