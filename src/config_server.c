/*
 * The servers: section of the configuration: a mapping of server names to
 * SSH connection settings, each walked against config_server_keys. The
 * files a server names are checked in config_files.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "keyfile.h"
#include "util.h"

/* Indices into config_server_keys, for the checks after the walk. */
enum config_server_key {
	CONFIG_SK_HOST,
	CONFIG_SK_PORT,
	CONFIG_SK_USER,
	CONFIG_SK_IDENTITY,
	CONFIG_SK_PASSPHRASE,
	CONFIG_SK_KNOWN_HOSTS,
	CONFIG_SK_HOST_KEY,
	CONFIG_SK_KEEPALIVE,
	CONFIG_SK_KEEPALIVE_COUNT,
	CONFIG_SK_CONNECT_TIMEOUT,
	CONFIG_SK_RECLAIM,
	CONFIG_SK_MAX_MEMORY,
	CONFIG_SK_MAX_CONNS,
	CONFIG_SK_MAX_WINDOW,
	CONFIG_SK_COUNT
};

/* Parse host_key: "TYPE BASE64" with a supported type. */
static void
config_parse_host_key(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_server	*srv = obj;
	const char		*s = config_scalar(val);
	char			*cause;

	(void)key;
	if (s == NULL || config_is_null(val) || *s == '\0') {
		config_error_at(ctx, val, "\"host_key\" must be a string "
		    "\"TYPE BASE64\"");
		return;
	}
	if (keyfile_check_public(s, NULL, &cause) == -1) {
		config_error_at(ctx, val, "invalid host_key: %s", cause);
		free(cause);
		return;
	}
	srv->host_key = xstrdup(s);
}

/*
 * Parse a size: digits and an optional binary unit. Decimal units (kB,
 * MB) are refused rather than guessed: a memory limit off by 5 % is not
 * what anybody wrote.
 */
int
config_parse_size(const char *s, uint64_t *bytes, char **cause)
{
	static const struct {
		const char	*unit;
		int		 shift;
	} units[] = {
		{ "", 0 }, { "B", 0 }, { "K", 10 }, { "KiB", 10 },
		{ "M", 20 }, { "MiB", 20 }, { "G", 30 }, { "GiB", 30 },
		{ "T", 40 }, { "TiB", 40 }
	};
	const char	*p = s;
	uint64_t	 v = 0;
	size_t		 i;

	*cause = NULL;
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto big;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (i = 0; i < ARRAY_LEN(units); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			goto big;
		*bytes = v << units[i].shift;
		return 0;
	}
bad:
	*cause = xasprintf("invalid size \"%s\": expected a number of bytes "
	    "with an optional unit KiB, MiB or GiB, e.g. 64MiB", s);
	return -1;
big:
	*cause = xasprintf("size \"%s\" is too large", s);
	return -1;
}

/* Format a size in the largest exact binary unit. */
void
config_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t	i = 0;

	while (i + 1 < ARRAY_LEN(units) && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, len, "%llu%s", (unsigned long long)bytes, units[i]);
}

/*
 * Parse the size key name at val into *out when it lies within [min,
 * max]; 0, or -1 with the error reported at val.
 */
int
config_size_at(struct config_ctx *ctx, yaml_node_t *val, const char *name,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char	*s = config_scalar(val);
	char		*cause, lim[32];
	uint64_t	 v;

	if (s == NULL || config_is_null(val)) {
		config_error_at(ctx, val, "\"%s\" must be a size such as "
		    "64MiB", name);
		return -1;
	}
	if (config_parse_size(s, &v, &cause) == -1) {
		config_error_at(ctx, val, "%s", cause);
		free(cause);
		return -1;
	}
	if (v < min || v > max) {
		config_format_size(v < min ? min : max, lim, sizeof lim);
		config_error_at(ctx, val, "\"%s\" %s is too %s: at %s %s",
		    name, s, v < min ? "small" : "large",
		    v < min ? "least" : "most", lim);
		return -1;
	}
	*out = v;
	return 0;
}

/* Parse max_session_memory: a key exchange alone needs some 100 KiB. */
static void
config_parse_max_memory(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_server	*srv = obj;

	(void)key;
	(void)config_size_at(ctx, val, "max_session_memory",
	    CONFIG_MIN_SESSION_MEMORY, SIZE_MAX, &srv->max_session_memory);
}

/* Parse max_receive_window: 0 up to the base turns autotuning off. */
static void
config_parse_max_window(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_server	*srv = obj;

	(void)key;
	(void)config_size_at(ctx, val, "max_receive_window", 0,
	    CONFIG_MAX_RECEIVE_WINDOW, &srv->max_receive_window);
}

#define CONFIG_SERVER_FIELD(f)	offsetof(struct config_server, f)
static const struct config_key config_server_keys[CONFIG_SK_COUNT] = {
	[CONFIG_SK_HOST] = { "host", CONFIG_HOST,
	    CONFIG_SERVER_FIELD(host), 1, NULL },
	[CONFIG_SK_PORT] = { "port", CONFIG_PORT,
	    CONFIG_SERVER_FIELD(port), 0, NULL },
	[CONFIG_SK_USER] = { "user", CONFIG_STRING,
	    CONFIG_SERVER_FIELD(user), 1, NULL },
	[CONFIG_SK_IDENTITY] = { "identity", CONFIG_PATH,
	    CONFIG_SERVER_FIELD(identity), 1, NULL },
	[CONFIG_SK_PASSPHRASE] = { "passphrase_file", CONFIG_PATH,
	    CONFIG_SERVER_FIELD(passphrase_file), 0, NULL },
	[CONFIG_SK_KNOWN_HOSTS] = { "known_hosts", CONFIG_PATH,
	    CONFIG_SERVER_FIELD(known_hosts), 0, NULL },
	[CONFIG_SK_HOST_KEY] = { "host_key", CONFIG_CUSTOM, 0, 0,
	    config_parse_host_key },
	[CONFIG_SK_KEEPALIVE] = { "keepalive", CONFIG_DURATION,
	    CONFIG_SERVER_FIELD(keepalive_ms), 0, NULL },
	[CONFIG_SK_KEEPALIVE_COUNT] = { "keepalive_count", CONFIG_COUNT,
	    CONFIG_SERVER_FIELD(keepalive_count), 0, NULL },
	[CONFIG_SK_CONNECT_TIMEOUT] = { "connect_timeout", CONFIG_DURATION,
	    CONFIG_SERVER_FIELD(connect_timeout_ms), 0, NULL },
	[CONFIG_SK_RECLAIM] = { "reclaim_stale_port", CONFIG_BOOL,
	    CONFIG_SERVER_FIELD(reclaim_stale_port), 0, NULL },
	[CONFIG_SK_MAX_MEMORY] = { "max_session_memory", CONFIG_CUSTOM, 0, 0,
	    config_parse_max_memory },
	[CONFIG_SK_MAX_CONNS] = { "max_connections", CONFIG_LIMIT,
	    CONFIG_SERVER_FIELD(max_connections), 0, NULL },
	[CONFIG_SK_MAX_WINDOW] = { "max_receive_window", CONFIG_CUSTOM, 0, 0,
	    config_parse_max_window },
};

/* Parse one server (name: mapping) and append it to cfg->servers. */
static void
config_parse_server(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, const char *name)
{
	struct config		*cfg = ctx->cfg;
	struct config_server	*srv;
	yaml_node_t		*seen[CONFIG_SK_COUNT];
	char			*subject;

	cfg->servers = xreallocarray(cfg->servers, cfg->n_servers + 1,
	    sizeof *cfg->servers);
	srv = &cfg->servers[cfg->n_servers++];
	memset(srv, 0, sizeof *srv);
	srv->name = xstrdup(name);
	srv->port = 22;
	srv->keepalive_ms = 10000;
	srv->keepalive_count = 3;
	srv->connect_timeout_ms = 10000;
	srv->reclaim_stale_port = 1;
	srv->max_session_memory = CONFIG_DEFAULT_SESSION_MEMORY;
	srv->max_connections = CONFIG_DEFAULT_SERVER_CONNS;
	srv->max_receive_window = CONFIG_DEFAULT_RECEIVE_WINDOW;
	srv->line = (int)key->start_mark.line + 1;
	srv->col = (int)key->start_mark.column + 1;

	subject = xasprintf("server \"%s\"", name);
	if (!config_is_null(val) && val->type != YAML_MAPPING_NODE) {
		config_error_at(ctx, val, "%s must be a mapping with host, "
		    "user, identity ...", subject);
		goto out;
	}
	config_walk(ctx, val, key, config_server_keys, CONFIG_SK_COUNT, srv,
	    subject, seen);
	if (seen[CONFIG_SK_KNOWN_HOSTS] == NULL &&
	    seen[CONFIG_SK_HOST_KEY] == NULL)
		config_error_at(ctx, key, "%s needs known_hosts or host_key",
		    subject);
	else if (seen[CONFIG_SK_KNOWN_HOSTS] != NULL &&
	    seen[CONFIG_SK_HOST_KEY] != NULL) {
		/* The struct promises known_hosts == NULL with host_key. */
		config_error_at(ctx, seen[CONFIG_SK_HOST_KEY], "%s has both "
		    "known_hosts and host_key; keep only one", subject);
	}
	if (ctx->check_files)
		config_check_server_files(ctx, srv, seen[CONFIG_SK_IDENTITY],
		    seen[CONFIG_SK_PASSPHRASE], seen[CONFIG_SK_KNOWN_HOSTS]);
out:
	free(subject);
}

/* Parse the servers: mapping (name -> server). */
void
config_parse_servers(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*k, *pk;
	const char		*name;
	size_t			 i;

	(void)key;
	(void)obj;
	if (config_is_null(val))
		return;
	if (val->type != YAML_MAPPING_NODE) {
		config_error_at(ctx, val, "\"servers\" must be a mapping of "
		    "server names");
		return;
	}
	for (i = 0; i < config_map_len(val) && !config_errors_full(ctx);
	    i++) {
		pair = &val->data.mapping.pairs.start[i];
		k = config_node(ctx, pair->key);
		if (i == CONFIG_SERVERS_MAX) {
			config_error_at(ctx, k, "more than %d servers",
			    CONFIG_SERVERS_MAX);
			break;
		}
		if ((name = config_scalar(k)) == NULL) {
			config_error_at(ctx, k, "server names must be plain "
			    "strings");
			continue;
		}
		if ((pk = config_map_earlier_key(ctx, val, pair, name)) !=
		    NULL) {
			config_error_at(ctx, k, "duplicate server name \"%s\" "
			    "(first defined at line %zu)", name,
			    pk->start_mark.line + 1);
			continue;
		}
		if (!config_valid_name(name))
			config_error_at(ctx, k, "invalid server name \"%s\": "
			    CONFIG_NAME_RULE, name);
		config_parse_server(ctx, k, config_node(ctx, pair->value),
		    name);
	}
}
