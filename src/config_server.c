/*
 * The servers: section of the configuration: a mapping of server names to
 * SSH connection settings, each walked against config_server_keys. The
 * files a server names are checked in config_files.c.
 */
#include <stddef.h>
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
