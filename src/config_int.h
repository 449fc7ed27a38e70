/*
 * Private to the config_*.c files: the state of one config_parse call,
 * the schema tables the walker follows, and the helpers the sections
 * (servers, tunnels, the root) share. Nothing outside the loader
 * includes this.
 */
#ifndef TUNNELS_CONFIG_INT_H
#define TUNNELS_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"

#define CONFIG_NAME_MAX		32

/*
 * Limits on the input, far above any real configuration, that keep
 * every file (a reload included) quick to refuse: libyaml's cost grows
 * with the square of the nesting depth (100k levels took 20 s), the
 * node count bounds every walk (aliases counted as what they repeat),
 * and past CONFIG_ERRORS_MAX problems the rest of the file is skipped.
 */
#define CONFIG_DEPTH_MAX	64
#define CONFIG_NODES_MAX	100000
#define CONFIG_ANCHORS_MAX	256
#define CONFIG_ERRORS_MAX	100
/* The checks across tunnels compare each pair: keep them quick. */
#define CONFIG_TUNNELS_MAX	5000
#define CONFIG_SERVERS_MAX	1000
/* Durations (keepalive, connect_timeout, backoff) and keepalive_count. */
#define CONFIG_DURATION_MAX	(24 * 3600 * 1000LL)
#define CONFIG_DURATION_MAX_TEXT "24h"
#define CONFIG_COUNT_MAX	100
/* max_connections: beyond a million the fd limit decides anyway. */
#define CONFIG_LIMIT_MAX	1000000
#define CONFIG_NAME_RULE \
	"use 1-32 characters from a-z, 0-9, \"_\" and \"-\""

/* Where a tunnel's values came from, for the checks across tunnels. */
struct config_tmark {
	yaml_node_t	 *item;		/* the list item (a mapping) */
	yaml_node_t	 *name;		/* value nodes; NULL when absent */
	yaml_node_t	 *server;
	yaml_node_t	 *remote;
	int		  remote_ok;	/* remote parsed without error */
	yaml_node_t	**names;	/* one per nginx server_name */
	size_t		  n_names;
	char		 *subject;	/* "tunnel \"blog\"" or "tunnel #2" */
};

/* State of one config_parse call. */
struct config_ctx {
	struct config		*cfg;
	struct config_errors	*errs;
	yaml_document_t		*doc;
	char			*basedir;	/* absolute dir of the file */
	int			 check_files;
	struct config_tmark	*tmarks;	/* parallel to cfg->tunnels */
	struct config_tmark	*cur;		/* tunnel being walked */
};

/* How the walker stores a value (see struct config_key). */
enum config_kind {
	CONFIG_STRING,		/* char *, non-empty */
	CONFIG_HOST,		/* char *, host name or IP literal */
	CONFIG_PATH,		/* char *, local path, made absolute */
	CONFIG_ABSPATH,		/* char *, absolute path on another host */
	CONFIG_DURATION,	/* int64_t ms, > 0, <= CONFIG_DURATION_MAX */
	CONFIG_PORT,		/* int, 1-65535 */
	CONFIG_COUNT,		/* int, 1 to CONFIG_COUNT_MAX */
	CONFIG_LIMIT,		/* int, 1 to CONFIG_LIMIT_MAX (connection caps) */
	CONFIG_BOOL,		/* int, 0 or 1 */
	CONFIG_CUSTOM		/* parse() does everything */
};

/* One entry of a mapping's schema. */
struct config_key {
	const char		*name;
	enum config_kind	 kind;
	size_t			 off;		/* field offset in the object */
	int			 required;
	void			(*parse)(struct config_ctx *, yaml_node_t *,
				    yaml_node_t *, void *);
};

/* config_yaml.c: errors, nodes, scalars and the schema walker. */
void		 config_error_add(struct config_errors *, int line, int col,
		    char *msg);
void		 config_error_at(struct config_ctx *, const yaml_node_t *,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* config.c: a warning located at a node's start (NULL: no place). */
void		 config_warning_at(struct config_ctx *, const yaml_node_t *,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void		 config_yaml_error(struct config_ctx *, const yaml_parser_t *,
		    const char *text, size_t len);
int		 config_yaml_limits(struct config_ctx *, const char *text,
		    size_t len);
int		 config_errors_full(struct config_ctx *);
yaml_node_t	*config_node(struct config_ctx *, int index);
int		 config_is_null(const yaml_node_t *);
const char	*config_scalar(const yaml_node_t *);
size_t		 config_map_len(const yaml_node_t *);
yaml_node_t	*config_map_earlier_key(struct config_ctx *, yaml_node_t *map,
		    const yaml_node_pair_t *pair, const char *name);
int		 config_valid_name(const char *);
/* A size key (name) within [min, max] into *out; 0, or -1 (reported). */
int		 config_size_at(struct config_ctx *, yaml_node_t *val,
		    const char *name, uint64_t min, uint64_t max,
		    uint64_t *out);
void		 config_format_duration(int64_t ms, char *buf, size_t len);
void		 config_walk(struct config_ctx *, yaml_node_t *map,
		    yaml_node_t *anchor, const struct config_key *keys,
		    size_t nkeys, void *obj, const char *subject,
		    yaml_node_t **seen);

/* config_server.c: the servers: mapping. */
void		 config_parse_servers(struct config_ctx *, yaml_node_t *key,
		    yaml_node_t *val, void *obj);

/* config_files.c: the files a server names (with check_files only). */
void		 config_check_server_files(struct config_ctx *,
		    const struct config_server *, yaml_node_t *identity,
		    yaml_node_t *passphrase, yaml_node_t *known_hosts);

/* config_tunnel.c: the tunnels: list, nginx sections included. */
void		 config_parse_tunnels(struct config_ctx *, yaml_node_t *key,
		    yaml_node_t *val, void *obj);

#endif
