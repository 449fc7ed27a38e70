/*
 * The generic part of the configuration loader: errors tied to YAML
 * nodes, node helpers, scalar parsers and the schema walker that every
 * mapping (root, servers, tunnels, nginx) goes through. Nothing here knows
 * what a server or a tunnel is.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "util.h"

/* ---------------------------------------------------------------- */
/* Errors */

/*
 * Append an error at an explicit place (1-based, or 0 for none). Past
 * CONFIG_ERRORS_MAX the error is only counted: a generated file with a
 * mistake in every line must not make a megabyte of output.
 */
void
config_error_add(struct config_errors *errs, int line, int col, char *msg)
{
	struct config_error	*e;

	if (errs->n >= CONFIG_ERRORS_MAX) {
		errs->truncated = 1;
		free(msg);
		return;
	}
	errs->v = xreallocarray(errs->v, errs->n + 1, sizeof *errs->v);
	e = &errs->v[errs->n++];
	e->line = line;
	e->col = col;
	e->msg = msg;
}

/* Append an error located at a node's start. */
void
config_error_at(struct config_ctx *ctx, const yaml_node_t *node,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (node == NULL)
		config_error_add(ctx->errs, 0, 0, msg);
	else
		config_error_add(ctx->errs, (int)node->start_mark.line + 1,
		    (int)node->start_mark.column + 1, msg);
}

/* Report a libyaml failure at the place it names. */
void
config_yaml_error(struct config_ctx *ctx, const yaml_parser_t *p,
    const char *text, size_t len)
{
	const char	*hint = "", *s, *e;
	size_t		 line, col, i, off;

	if (p->error == YAML_READER_ERROR) {
		/* Encoding errors give a byte offset, not a mark. */
		off = MIN(p->problem_offset, len);
		line = col = 0;
		for (i = 0; i < off; i++) {
			if (text[i] == '\n') {
				line++;
				col = 0;
			} else
				col++;
		}
		config_error_add(ctx->errs, (int)line + 1, (int)col + 1,
		    xasprintf("YAML syntax error: %s", p->problem != NULL ?
		    p->problem : "invalid text"));
		return;
	}
	if (p->error == YAML_MEMORY_ERROR) {
		config_error_add(ctx->errs, 0, 0,
		    xstrdup("out of memory while parsing YAML"));
		return;
	}
	line = p->problem_mark.line;
	col = p->problem_mark.column;
	/* libyaml's messages about tabs never mention tabs. */
	for (s = text, i = 0; i < line && s != NULL; i++)
		if ((s = memchr(s, '\n', len - (size_t)(s - text))) != NULL)
			s++;
	if (s != NULL) {
		e = memchr(s, '\n', len - (size_t)(s - text));
		for (; s < (e != NULL ? e : text + len) &&
		    (*s == ' ' || *s == '\t'); s++)
			if (*s == '\t') {
				hint = " (tabs are not allowed for "
				    "indentation)";
				break;
			}
	}
	/* The context only helps when it points elsewhere. */
	if (p->context != NULL && p->context_mark.line != line)
		config_error_add(ctx->errs, (int)line + 1, (int)col + 1,
		    xasprintf("YAML syntax error: %s (%s at line %zu)%s",
		    p->problem != NULL ? p->problem : "invalid YAML",
		    p->context, p->context_mark.line + 1, hint));
	else
		config_error_add(ctx->errs, (int)line + 1, (int)col + 1,
		    xasprintf("YAML syntax error: %s%s", p->problem != NULL ?
		    p->problem : "invalid YAML", hint));
}

/*
 * 1 if enough errors are collected: the walkers stop there, so they ask
 * only while input remains, and the list is marked as cut short.
 */
int
config_errors_full(struct config_ctx *ctx)
{
	if (ctx->errs->n < CONFIG_ERRORS_MAX)
		return 0;
	ctx->errs->truncated = 1;
	return 1;
}

/* ---------------------------------------------------------------- */
/* Limits, checked on libyaml's events before it builds the document */

/* An anchor seen so far and the number of nodes an alias to it repeats. */
struct config_anchor {
	char		*name;
	uint64_t	 nodes;
};

/* The state of config_yaml_limits. */
struct config_limits {
	struct config_anchor	 anchors[CONFIG_ANCHORS_MAX];
	size_t			 n_anchors;
	struct {
		char		*anchor;	/* NULL when none */
		uint64_t	 start;		/* nodes before it */
	}			 open[CONFIG_DEPTH_MAX];
	size_t			 depth;
	uint64_t		 nodes;		/* aliases expanded */
};

/* Record an anchor that stands for nodes nodes; -1 when too many. */
static int
config_limits_anchor(struct config_ctx *ctx, struct config_limits *lim,
    const yaml_event_t *ev, const char *name, uint64_t nodes)
{
	if (lim->n_anchors == CONFIG_ANCHORS_MAX) {
		config_error_add(ctx->errs, (int)ev->start_mark.line + 1,
		    (int)ev->start_mark.column + 1, xasprintf("more than %d "
		    "anchors (&name)", CONFIG_ANCHORS_MAX));
		return -1;
	}
	lim->anchors[lim->n_anchors].name = xstrdup(name);
	lim->anchors[lim->n_anchors++].nodes = nodes;
	return 0;
}

/* The nodes an alias repeats: its anchor's, the latest of that name. */
static uint64_t
config_limits_alias(const struct config_limits *lim, const char *name)
{
	size_t	i;

	for (i = lim->n_anchors; i > 0; i--)
		if (strcmp(lim->anchors[i - 1].name, name) == 0)
			return lim->anchors[i - 1].nodes;
	/* Undefined, or its own ancestor: the loader reports or keeps it. */
	return 1;
}

/* Account for one event; -1 after adding an error when over a limit. */
static int
config_limits_event(struct config_ctx *ctx, struct config_limits *lim,
    const yaml_event_t *ev)
{
	const char	*anchor = NULL;
	uint64_t	 start;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		lim->nodes++;
		if (ev->data.scalar.anchor != NULL &&
		    config_limits_anchor(ctx, lim, ev,
		    (const char *)ev->data.scalar.anchor, 1) == -1)
			return -1;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = (const char *)ev->data.sequence_start.anchor;
		/* FALLTHROUGH */
	case YAML_MAPPING_START_EVENT:
		if (ev->type == YAML_MAPPING_START_EVENT)
			anchor = (const char *)ev->data.mapping_start.anchor;
		if (lim->depth == CONFIG_DEPTH_MAX) {
			config_error_add(ctx->errs,
			    (int)ev->start_mark.line + 1,
			    (int)ev->start_mark.column + 1, xasprintf("nested "
			    "deeper than %d levels of lists and mappings",
			    CONFIG_DEPTH_MAX));
			return -1;
		}
		lim->open[lim->depth].anchor = anchor != NULL ?
		    xstrdup(anchor) : NULL;
		lim->open[lim->depth++].start = lim->nodes++;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (lim->depth == 0)
			break;
		lim->depth--;
		anchor = lim->open[lim->depth].anchor;
		start = lim->open[lim->depth].start;
		lim->open[lim->depth].anchor = NULL;
		if (anchor != NULL && config_limits_anchor(ctx, lim, ev,
		    anchor, lim->nodes - start) == -1) {
			free((char *)anchor);
			return -1;
		}
		free((char *)anchor);
		break;
	case YAML_ALIAS_EVENT:
		lim->nodes += config_limits_alias(lim,
		    (const char *)ev->data.alias.anchor);
		break;
	default:
		break;
	}
	if (lim->nodes > CONFIG_NODES_MAX) {
		config_error_add(ctx->errs, (int)ev->start_mark.line + 1,
		    (int)ev->start_mark.column + 1, xasprintf("more than %d "
		    "YAML nodes (values, lists and mappings, each alias "
		    "counted as what it repeats)", CONFIG_NODES_MAX));
		return -1;
	}
	return 0;
}

/*
 * Check the input's nesting depth, node count and anchors on the event
 * stream, before yaml_parser_load builds a tree whose cost grows with
 * the square of the depth. Stops at the first syntax error, which the
 * load that follows reports at the same place. Returns 0, or -1 after
 * adding an error at the event over the limit.
 */
int
config_yaml_limits(struct config_ctx *ctx, const char *text, size_t len)
{
	struct config_limits	*lim;
	yaml_parser_t		 parser;
	yaml_event_t		 ev;
	int			 rv = 0, done = 0;
	size_t			 i;

	if (!yaml_parser_initialize(&parser))
		return 0;
	lim = xcalloc(1, sizeof *lim);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
	    len);
	while (!done && rv == 0 && yaml_parser_parse(&parser, &ev)) {
		done = ev.type == YAML_STREAM_END_EVENT;
		rv = config_limits_event(ctx, lim, &ev);
		yaml_event_delete(&ev);
	}
	for (i = 0; i < lim->n_anchors; i++)
		free(lim->anchors[i].name);
	for (i = 0; i < lim->depth; i++)
		free(lim->open[i].anchor);
	free(lim);
	yaml_parser_delete(&parser);
	return rv;
}

/* ---------------------------------------------------------------- */
/* YAML node helpers */

/* Node by index (libyaml stores children as indices). */
yaml_node_t *
config_node(struct config_ctx *ctx, int index)
{
	return yaml_document_get_node(ctx->doc, index);
}

/* 1 if the node is YAML null: an empty or "~"/"null" plain scalar. */
int
config_is_null(const yaml_node_t *n)
{
	const char	*v;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)n->data.scalar.value;
	return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* The text of a scalar node, or NULL if not a scalar (or has a NUL). */
const char *
config_scalar(const yaml_node_t *n)
{
	const char	*v;

	if (n->type != YAML_SCALAR_NODE)
		return NULL;
	v = (const char *)n->data.scalar.value;
	/* A "\0" escape would silently truncate names and paths. */
	if (strlen(v) != n->data.scalar.length)
		return NULL;
	return v;
}

/* Number of key/value pairs of a mapping node (0 for null). */
size_t
config_map_len(const yaml_node_t *n)
{
	if (n->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(n->data.mapping.pairs.top -
	    n->data.mapping.pairs.start);
}

/*
 * The key node of a pair before pair in map whose key is name, or NULL.
 * A repeated key is reported where it repeats, naming the first one.
 */
yaml_node_t *
config_map_earlier_key(struct config_ctx *ctx, yaml_node_t *map,
    const yaml_node_pair_t *pair, const char *name)
{
	yaml_node_pair_t	*prev;
	yaml_node_t		*k;

	for (prev = map->data.mapping.pairs.start; prev < pair; prev++) {
		k = config_node(ctx, prev->key);
		if (k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, name) == 0)
			return k;
	}
	return NULL;
}

/* 1 if name matches [a-z0-9_-]{1,32}. */
int
config_valid_name(const char *name)
{
	size_t	i, len = strlen(name);

	if (len < 1 || len > CONFIG_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
		    name[i] == '-'))
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- */
/* Scalar values */

/* Parse "10s", "500ms", "1m", "2h" into milliseconds. */
int
config_parse_duration(const char *s, int64_t *ms, char **cause)
{
	static const struct {
		const char	*unit;
		int64_t		 mult;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }
	};
	const char	*p = s;
	int64_t		 v = 0;
	size_t		 i;

	*cause = NULL;
	if (*p == '-') {
		*cause = xasprintf("duration \"%s\" must not be negative", s);
		return -1;
	}
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			goto big;
		v = v * 10 + (*p - '0');
	}
	if (*p == '\0') {
		*cause = xasprintf("duration \"%s\" needs a unit (ms, s, m or "
		    "h)", s);
		return -1;
	}
	for (i = 0; i < ARRAY_LEN(units); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > INT64_MAX / units[i].mult)
			goto big;
		*ms = v * units[i].mult;
		return 0;
	}
bad:
	*cause = xasprintf("invalid duration \"%s\": expected a number and a "
	    "unit (ms, s, m or h), e.g. 10s", s);
	return -1;
big:
	*cause = xasprintf("duration \"%s\" is too large", s);
	return -1;
}

/* Format milliseconds in the largest exact unit ("90s", "1500ms"). */
void
config_format_duration(int64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

/* Parse an optionally negative decimal integer; clamps on overflow. */
static int
config_parse_long(const char *s, long *out)
{
	const char	*p = s;

	if (*p == '-')
		p++;
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	/* On overflow strtol clamps, which the range checks then report. */
	*out = strtol(s, NULL, 10);
	return 0;
}

/* Parse true/false/yes/no (any case). */
static int
config_parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0)
		*out = 1;
	else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* 1 if s is a host name, IPv4 or IPv6 literal (no brackets). */
static int
config_valid_host(const char *s)
{
	const char	*p;

	if (*s == '\0' || *s == '-' || strlen(s) >= ADDR_HOST_MAX)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == ':' || *p == '%'))
			return 0;
	return 1;
}

/*
 * Check a path and make a relative one absolute against the config
 * file's directory. Returns a malloc'd path, or NULL after an error.
 */
static char *
config_resolve_path(struct config_ctx *ctx, yaml_node_t *node,
    const char *key, const char *path, int local)
{
	const char	*p;

	if (*path == '~') {
		/* A system unit has no HOME, so "~" would mean nothing. */
		config_error_at(ctx, node, "\"%s\": path \"%s\" starts with "
		    "\"~\", which is not expanded (systemd sets no HOME for "
		    "system services); use an absolute path", key, path);
		return NULL;
	}
	for (p = path; (p = strchr(p, '$')) != NULL; p++) {
		if (p[1] == '{' || p[1] == '_' || (p[1] >= 'A' &&
		    p[1] <= 'Z') || (p[1] >= 'a' && p[1] <= 'z')) {
			config_error_at(ctx, node, "\"%s\": path \"%s\" "
			    "contains a variable, which is not expanded; use "
			    "a literal path", key, path);
			return NULL;
		}
	}
	if (*path == '/')
		return xstrdup(path);
	if (!local) {
		config_error_at(ctx, node, "\"%s\" must be an absolute path "
		    "(it is a path on the server that runs nginx)", key);
		return NULL;
	}
	while (strncmp(path, "./", 2) == 0)
		path += 2;
	if (strcmp(ctx->basedir, "/") == 0)
		return xasprintf("/%s", path);
	return xasprintf("%s/%s", ctx->basedir, path);
}

/* ---------------------------------------------------------------- */
/* The schema walker */

/* Edit distance of two short strings (for "did you mean"). */
static size_t
config_distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, prev, cur, row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = row[j];
			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1),
			    prev + (a[i - 1] != b[j - 1]));
			prev = cur;
		}
	}
	return row[lb];
}

/* The closest known key within edit distance 2, or NULL. */
static const char *
config_suggest(const char *word, const struct config_key *keys,
    size_t nkeys)
{
	const char	*best = NULL;
	size_t		 i, d, bestd = 3;

	for (i = 0; i < nkeys; i++) {
		d = config_distance(word, keys[i].name);
		/* Suggesting "key" for "xy" would be noise, not help. */
		if (d < bestd && d < strlen(keys[i].name)) {
			best = keys[i].name;
			bestd = d;
		}
	}
	return best;
}

/* Store a string, host or path value at *sp, checked and made absolute. */
static void
config_store_string(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, char **sp)
{
	const char	*s = config_scalar(val);
	char		*path;

	if (s == NULL) {
		config_error_at(ctx, val, "\"%s\" must be a string", k->name);
		return;
	}
	if (config_is_null(val) || *s == '\0') {
		config_error_at(ctx, val, "\"%s\" must not be empty", k->name);
		return;
	}
	if (k->kind == CONFIG_HOST && !config_valid_host(s)) {
		config_error_at(ctx, val, "invalid host \"%s\": expected a "
		    "host name or an IP address (IPv6 without brackets)", s);
		return;
	}
	if (k->kind == CONFIG_PATH || k->kind == CONFIG_ABSPATH) {
		path = config_resolve_path(ctx, val, k->name, s,
		    k->kind == CONFIG_PATH);
		if (path == NULL)
			return;
	} else
		path = xstrdup(s);
	free(*sp);
	*sp = path;
}

/* 0 if l (spelled s) is in range for a port, count or limit key. */
static int
config_check_int(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, const char *s, long l)
{
	if (k->kind == CONFIG_PORT && (l < 1 || l > 65535)) {
		config_error_at(ctx, val, "port %s out of range (1-65535)", s);
		return -1;
	}
	if ((k->kind == CONFIG_COUNT || k->kind == CONFIG_LIMIT) && l < 1) {
		config_error_at(ctx, val, "\"%s\" must be at least 1",
		    k->name);
		return -1;
	}
	/* keepalive x keepalive_count must stay a sane time. */
	if (k->kind == CONFIG_COUNT && l > CONFIG_COUNT_MAX) {
		config_error_at(ctx, val, "\"%s\" must be at most %d (got %s)",
		    k->name, CONFIG_COUNT_MAX, s);
		return -1;
	}
	if (k->kind == CONFIG_LIMIT && l > CONFIG_LIMIT_MAX) {
		config_error_at(ctx, val, "\"%s\" must be at most %d (got %s)",
		    k->name, CONFIG_LIMIT_MAX, s);
		return -1;
	}
	if (l > INT_MAX) {
		config_error_at(ctx, val, "\"%s\" is too large", k->name);
		return -1;
	}
	return 0;
}

/* Store a port, count or limit value at *ip. */
static void
config_store_int(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, int *ip)
{
	const char	*s = config_scalar(val);
	long		 l;

	if (s == NULL || config_parse_long(s, &l) == -1) {
		config_error_at(ctx, val, "\"%s\" must be an integer",
		    k->name);
		return;
	}
	if (config_check_int(ctx, k, val, s, l) == -1)
		return;
	*ip = (int)l;
}

/* Store a duration value at *dp, in milliseconds. */
static void
config_store_duration(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, int64_t *dp)
{
	const char	*s = config_scalar(val);
	char		*cause;
	int64_t		 ms;

	if (s == NULL || config_is_null(val)) {
		config_error_at(ctx, val, "\"%s\" must be a duration such as "
		    "10s", k->name);
		return;
	}
	if (config_parse_duration(s, &ms, &cause) == -1) {
		config_error_at(ctx, val, "%s", cause);
		free(cause);
		return;
	}
	if (ms == 0) {
		config_error_at(ctx, val, "\"%s\" must be greater than 0",
		    k->name);
		return;
	}
	/* The daemon adds and multiplies these: keep them small. */
	if (ms > CONFIG_DURATION_MAX) {
		config_error_at(ctx, val, "\"%s\" must be at most "
		    CONFIG_DURATION_MAX_TEXT " (got %s)", k->name, s);
		return;
	}
	*dp = ms;
}

/* Store a boolean value at *ip. */
static void
config_store_bool(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, int *ip)
{
	const char	*s = config_scalar(val);

	if (s == NULL || config_parse_bool(s, ip) == -1)
		config_error_at(ctx, val, "\"%s\" must be true or false",
		    k->name);
}

/* Store one scalar-kind value into obj according to its schema entry. */
static void
config_store(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, void *obj)
{
	void	*field = (char *)obj + k->off;

	switch (k->kind) {
	case CONFIG_STRING:
	case CONFIG_HOST:
	case CONFIG_PATH:
	case CONFIG_ABSPATH:
		config_store_string(ctx, k, val, field);
		break;
	case CONFIG_PORT:
	case CONFIG_COUNT:
	case CONFIG_LIMIT:
		config_store_int(ctx, k, val, field);
		break;
	case CONFIG_DURATION:
		config_store_duration(ctx, k, val, field);
		break;
	case CONFIG_BOOL:
		config_store_bool(ctx, k, val, field);
		break;
	case CONFIG_CUSTOM:
		break;
	}
}

/*
 * Walk a mapping against its schema: report keys that are not strings,
 * duplicated, unknown or missing; store or dispatch each value. seen[i]
 * receives the value node of keys[i] (NULL when absent). subject names
 * the mapping in messages ("server \"vps\""); NULL for the top level.
 * anchor is where "missing key" errors point.
 */
void
config_walk(struct config_ctx *ctx, yaml_node_t *map, yaml_node_t *anchor,
    const struct config_key *keys, size_t nkeys, void *obj,
    const char *subject, yaml_node_t **seen)
{
	yaml_node_pair_t	*pair;
	yaml_node_t		*key, *val, *pkey;
	const char		*name, *hint, *in, *where;
	size_t			 p, k;

	in = subject != NULL ? "in " : "at top level";
	where = subject != NULL ? subject : "";
	for (k = 0; k < nkeys; k++)
		seen[k] = NULL;
	for (p = 0; p < config_map_len(map) && !config_errors_full(ctx);
	    p++) {
		pair = &map->data.mapping.pairs.start[p];
		key = config_node(ctx, pair->key);
		val = config_node(ctx, pair->value);
		if ((name = config_scalar(key)) == NULL) {
			config_error_at(ctx, key, "keys must be plain "
			    "strings");
			continue;
		}
		if ((pkey = config_map_earlier_key(ctx, map, pair, name)) !=
		    NULL) {
			config_error_at(ctx, key, "duplicate key \"%s\" %s%s "
			    "(first at line %zu)", name, in, where,
			    pkey->start_mark.line + 1);
			continue;
		}
		for (k = 0; k < nkeys && strcmp(keys[k].name, name) != 0; k++)
			;
		if (k == nkeys) {
			hint = config_suggest(name, keys, nkeys);
			if (hint != NULL)
				config_error_at(ctx, key, "unknown key \"%s\" "
				    "%s%s (did you mean \"%s\"?)", name, in,
				    where, hint);
			else
				config_error_at(ctx, key, "unknown key \"%s\" "
				    "%s%s", name, in, where);
			continue;
		}
		seen[k] = val;
		if (keys[k].kind == CONFIG_CUSTOM)
			keys[k].parse(ctx, key, val, obj);
		else
			config_store(ctx, &keys[k], val, obj);
	}
	for (k = 0; k < nkeys; k++)
		if (keys[k].required && seen[k] == NULL)
			config_error_at(ctx, anchor, "%s is missing required "
			    "key \"%s\"", subject != NULL ? subject :
			    "the configuration", keys[k].name);
}
