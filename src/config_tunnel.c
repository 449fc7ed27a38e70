/*
 * The tunnels: section of the configuration: a list of tunnels, each with
 * a name, a server, a remote listen address, a local target and an
 * optional nginx: section. While a tunnel is walked, ctx->cur records
 * where its values came from, for the checks across tunnels in config.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "addr.h"
#include "config.h"
#include "config_int.h"
#include "util.h"

/* ---------------------------------------------------------------- */
/* The nginx: section of a tunnel */

/*
 * 1 if s is a DNS name (labels of a-z, 0-9 and "-", not starting or
 * ending with "-") or a wildcard "*.example.com".
 */
static int
config_valid_dns(const char *s)
{
	size_t	len = strlen(s), label = 0;
	char	c, prev = '.';

	if (strncmp(s, "*.", 2) == 0) {
		s += 2;
		len -= 2;
	}
	if (len < 1 || len > 253)
		return 0;
	for (; (c = *s) != '\0'; prev = c, s++) {
		if (c == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && prev != '-';
}

/* Add one server_name (lower-cased) to the tunnel's nginx section. */
static void
config_add_server_name(struct config_ctx *ctx, struct config_nginx *n,
    yaml_node_t *node)
{
	struct config_tmark	*m = ctx->cur;
	const char		*s = config_scalar(node);
	char			*name, *p;

	if (s == NULL || config_is_null(node)) {
		config_error_at(ctx, node, "each server_name must be a DNS "
		    "name such as blog.example.com");
		return;
	}
	if (!config_valid_dns(s)) {
		config_error_at(ctx, node, "invalid server_name \"%s\": "
		    "expected a DNS name such as blog.example.com or "
		    "*.example.com", s);
		return;
	}
	name = xstrdup(s);
	for (p = name; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	/* Repeats are found with those across tunnels, in config.c. */
	n->server_names = xreallocarray(n->server_names,
	    n->n_server_names + 1, sizeof *n->server_names);
	n->server_names[n->n_server_names++] = name;
	m->names = xreallocarray(m->names, m->n_names + 1, sizeof *m->names);
	m->names[m->n_names++] = node;
}

/* Parse server_name: one name or a list of names. */
static void
config_parse_server_name(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_nginx	*n = obj;
	yaml_node_item_t	*item;

	(void)key;
	if (val->type == YAML_SCALAR_NODE) {
		config_add_server_name(ctx, n, val);
		return;
	}
	if (val->type != YAML_SEQUENCE_NODE) {
		config_error_at(ctx, val, "\"server_name\" must be a DNS name "
		    "or a list of names");
		return;
	}
	if (val->data.sequence.items.start == val->data.sequence.items.top)
		config_error_at(ctx, val, "\"server_name\" must list at least "
		    "one name");
	for (item = val->data.sequence.items.start;
	    item < val->data.sequence.items.top && !config_errors_full(ctx);
	    item++)
		config_add_server_name(ctx, n, config_node(ctx, *item));
}

#define CONFIG_NGINX_FIELD(f)	offsetof(struct config_nginx, f)
static const struct config_key config_tls_keys[] = {
	{ "cert", CONFIG_ABSPATH, CONFIG_NGINX_FIELD(cert), 1, NULL },
	{ "key", CONFIG_ABSPATH, CONFIG_NGINX_FIELD(key), 1, NULL },
};

/* Parse tls: off | letsencrypt | {cert: PATH, key: PATH}. */
static void
config_parse_tls(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_nginx	*n = obj;
	yaml_node_t		*seen[ARRAY_LEN(config_tls_keys)];
	const char		*s = config_scalar(val);
	char			*subject;

	if (val->type == YAML_MAPPING_NODE) {
		n->tls = CONFIG_TLS_FILES;
		subject = xasprintf("tls section of %s", ctx->cur->subject);
		config_walk(ctx, val, key, config_tls_keys,
		    ARRAY_LEN(config_tls_keys), n, subject, seen);
		free(subject);
		return;
	}
	if (s != NULL && strcmp(s, "off") == 0)
		n->tls = CONFIG_TLS_OFF;
	else if (s != NULL && strcmp(s, "letsencrypt") == 0)
		n->tls = CONFIG_TLS_LETSENCRYPT;
	else
		config_error_at(ctx, val, "\"tls\" must be off, letsencrypt "
		    "or a mapping with cert and key");
}

/* Parse client_max_body_size: an nginx size such as 10m, 512k, 1g, 0. */
static void
config_parse_body_size(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_nginx	*n = obj;
	const char		*s = config_scalar(val), *p;

	(void)key;
	if (s == NULL || config_is_null(val))
		goto bad;
	for (p = s; *p >= '0' && *p <= '9'; p++)
		;
	/* nginx parses sizes into an off_t; 18 digits cannot overflow. */
	if (p == s || p - s > 18)
		goto bad;
	if (*p != '\0' && (strchr("kKmMgG", *p) == NULL || p[1] != '\0'))
		goto bad;
	free(n->client_max_body_size);
	n->client_max_body_size = xstrdup(s);
	return;
bad:
	config_error_at(ctx, val, "invalid client_max_body_size \"%s\": "
	    "expected a size such as 512k, 10m, 1g or 0", s != NULL ? s : "");
}

static const struct config_key config_nginx_keys[] = {
	{ "server_name", CONFIG_CUSTOM, 0, 1, config_parse_server_name },
	{ "tls", CONFIG_CUSTOM, 0, 0, config_parse_tls },
	{ "websocket", CONFIG_BOOL, CONFIG_NGINX_FIELD(websocket), 0, NULL },
	{ "client_max_body_size", CONFIG_CUSTOM, 0, 0,
	    config_parse_body_size },
	{ "acme_webroot", CONFIG_ABSPATH, CONFIG_NGINX_FIELD(acme_webroot), 0,
	    NULL },
};

/* Parse a tunnel's nginx: mapping. */
static void
config_parse_nginx(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	struct config_nginx	*n;
	yaml_node_t		*seen[ARRAY_LEN(config_nginx_keys)];
	char			*subject;

	if (!config_is_null(val) && val->type != YAML_MAPPING_NODE) {
		config_error_at(ctx, val, "\"nginx\" must be a mapping with "
		    "server_name, tls ...");
		return;
	}
	n = xcalloc(1, sizeof *n);
	n->tls = CONFIG_TLS_OFF;
	n->websocket = 1;
	n->acme_webroot = xstrdup(CONFIG_DEFAULT_WEBROOT);
	n->line = (int)key->start_mark.line + 1;
	n->col = (int)key->start_mark.column + 1;
	t->nginx = n;
	subject = xasprintf("nginx section of %s", ctx->cur->subject);
	config_walk(ctx, val, key, config_nginx_keys,
	    ARRAY_LEN(config_nginx_keys), n, subject, seen);
	free(subject);
}

/* ---------------------------------------------------------------- */
/* Tunnels */

/* Indices into config_tunnel_keys. */
enum config_tunnel_key {
	CONFIG_TK_NAME,
	CONFIG_TK_SERVER,
	CONFIG_TK_REMOTE,
	CONFIG_TK_LOCAL,
	CONFIG_TK_NGINX,
	CONFIG_TK_MAX_CONNS,
	CONFIG_TK_COUNT
};

/* Parse a tunnel's name: [a-z0-9_-]{1,32}. */
static void
config_parse_tunnel_name(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	const char		*s = config_scalar(val);

	(void)key;
	if (s == NULL) {
		config_error_at(ctx, val, "\"name\" must be a string");
		return;
	}
	if (!config_valid_name(s)) {
		config_error_at(ctx, val, "invalid tunnel name \"%s\": "
		    CONFIG_NAME_RULE, s);
		return;
	}
	t->name = xstrdup(s);
}

/* Parse s as an address into *out; 0, or -1 after reporting why at val. */
static int
config_addr_at(struct config_ctx *ctx, yaml_node_t *val, const char *s,
    int flags, struct addr *out)
{
	char	*cause;

	if (addr_parse(s, "127.0.0.1", flags, out, &cause) == -1) {
		config_error_at(ctx, val, "%s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

/* Parse remote: the server-side listen address (TCP only). */
static void
config_parse_remote(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	const char		*s = config_scalar(val);

	(void)key;
	if (s == NULL || config_is_null(val)) {
		config_error_at(ctx, val, "\"remote\" must be a port or an "
		    "address such as \"127.0.0.1:4001\" (quote addresses "
		    "with brackets)");
		return;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		config_error_at(ctx, val, "\"remote\" cannot be a unix socket: "
		    "libssh2 can only request TCP forwards (tcpip-forward), "
		    "not unix-socket forwards (streamlocal-forward)");
		return;
	}
	if (config_addr_at(ctx, val, s, ADDR_ALLOW_PORT_ZERO,
	    &t->remote) == 0)
		ctx->cur->remote_ok = 1;
}

/* Parse local: the target on this machine (TCP or unix socket). */
static void
config_parse_local(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	const char		*s = config_scalar(val);

	(void)key;
	if (s == NULL || config_is_null(val)) {
		config_error_at(ctx, val, "\"local\" must be a port, an "
		    "address such as \"127.0.0.1:1313\" or \"unix:/PATH\"");
		return;
	}
	(void)config_addr_at(ctx, val, s, ADDR_ALLOW_UNIX, &t->local);
}

static const struct config_key config_tunnel_keys[CONFIG_TK_COUNT] = {
	[CONFIG_TK_NAME] = { "name", CONFIG_CUSTOM, 0, 1,
	    config_parse_tunnel_name },
	[CONFIG_TK_SERVER] = { "server", CONFIG_STRING,
	    offsetof(struct config_tunnel, server), 0, NULL },
	[CONFIG_TK_REMOTE] = { "remote", CONFIG_CUSTOM, 0, 1,
	    config_parse_remote },
	[CONFIG_TK_LOCAL] = { "local", CONFIG_CUSTOM, 0, 1,
	    config_parse_local },
	[CONFIG_TK_NGINX] = { "nginx", CONFIG_CUSTOM, 0, 0,
	    config_parse_nginx },
	[CONFIG_TK_MAX_CONNS] = { "max_connections", CONFIG_LIMIT,
	    offsetof(struct config_tunnel, max_connections), 0, NULL },
};

/*
 * How messages name a tunnel: by its name when the item has a valid one
 * (looked up before the walk, since keys come in any order), else by its
 * position in the list.
 */
static char *
config_tunnel_subject(struct config_ctx *ctx, yaml_node_t *item,
    size_t index)
{
	yaml_node_pair_t	*pair;
	const char		*s, *v;

	for (pair = item->data.mapping.pairs.start;
	    pair < item->data.mapping.pairs.top; pair++) {
		s = config_scalar(config_node(ctx, pair->key));
		if (s == NULL || strcmp(s, "name") != 0)
			continue;
		v = config_scalar(config_node(ctx, pair->value));
		if (v != NULL && config_valid_name(v))
			return xasprintf("tunnel \"%s\"", v);
		break;
	}
	return xasprintf("tunnel #%zu", index + 1);
}

/* Parse the tunnels: list. */
void
config_parse_tunnels(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config		*cfg = ctx->cfg;
	struct config_tunnel	*t;
	struct config_tmark	*m;
	yaml_node_item_t	*it;
	yaml_node_t		*item, *seen[CONFIG_TK_COUNT];
	size_t			 index;

	(void)key;
	(void)obj;
	if (config_is_null(val))
		return;
	if (val->type != YAML_SEQUENCE_NODE) {
		config_error_at(ctx, val, "\"tunnels\" must be a list%s",
		    val->type == YAML_MAPPING_NODE ? " (start each tunnel "
		    "with \"- name: ...\")" : "");
		return;
	}
	for (it = val->data.sequence.items.start;
	    it < val->data.sequence.items.top && !config_errors_full(ctx);
	    it++) {
		index = (size_t)(it - val->data.sequence.items.start);
		item = config_node(ctx, *it);
		if (index == CONFIG_TUNNELS_MAX) {
			config_error_at(ctx, item, "more than %d tunnels",
			    CONFIG_TUNNELS_MAX);
			break;
		}
		if (item->type != YAML_MAPPING_NODE) {
			config_error_at(ctx, item, "tunnel #%zu must be a "
			    "mapping with name, remote and local", index + 1);
			continue;
		}
		cfg->tunnels = xreallocarray(cfg->tunnels, cfg->n_tunnels + 1,
		    sizeof *cfg->tunnels);
		ctx->tmarks = xreallocarray(ctx->tmarks, cfg->n_tunnels + 1,
		    sizeof *ctx->tmarks);
		t = &cfg->tunnels[cfg->n_tunnels];
		m = &ctx->tmarks[cfg->n_tunnels];
		cfg->n_tunnels++;
		memset(t, 0, sizeof *t);
		memset(m, 0, sizeof *m);
		t->max_connections = CONFIG_DEFAULT_TUNNEL_CONNS;
		t->line = (int)item->start_mark.line + 1;
		t->col = (int)item->start_mark.column + 1;
		m->item = item;
		m->subject = config_tunnel_subject(ctx, item, index);
		ctx->cur = m;
		config_walk(ctx, item, item, config_tunnel_keys,
		    CONFIG_TK_COUNT, t, m->subject, seen);
		ctx->cur = NULL;
		m->name = seen[CONFIG_TK_NAME];
		m->server = seen[CONFIG_TK_SERVER];
		m->remote = seen[CONFIG_TK_REMOTE];
	}
}
