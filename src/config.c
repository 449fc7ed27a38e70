/*
 * The configuration loader: libyaml's document tree -> struct config.
 * Every mapping is walked against a schema table; each problem is recorded
 * with the line and column of the node it concerns and the walk goes on,
 * so that `tunnels check` reports all mistakes in one run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

#define CONFIG_FILE_MAX		(1024 * 1024)
#define CONFIG_NAME_MAX		32
#define CONFIG_NAME_RULE \
	"use 1-32 characters from a-z, 0-9, \"_\" and \"-\""
#define CONFIG_BACKOFF_INITIAL	1000
#define CONFIG_BACKOFF_MAX	60000

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
	CONFIG_DURATION,	/* int64_t milliseconds, > 0 */
	CONFIG_PORT,		/* int, 1-65535 */
	CONFIG_COUNT,		/* int, >= 1 */
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

/* ---------------------------------------------------------------- */
/* Errors */

/* Append an error at an explicit place (1-based, or 0 for none). */
static void
config_error_add(struct config_errors *errs, int line, int col, char *msg)
{
	struct config_error	*e;

	errs->v = xreallocarray(errs->v, errs->n + 1, sizeof *errs->v);
	e = &errs->v[errs->n++];
	e->line = line;
	e->col = col;
	e->msg = msg;
}

/* Append an error located at a node's start. */
static void __attribute__((format(printf, 3, 4)))
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

/* Stable sort by line, then column (insertion sort: lists are short). */
static void
config_errors_sort(struct config_errors *errs)
{
	struct config_error	 e;
	size_t			 i, j;

	for (i = 1; i < errs->n; i++) {
		e = errs->v[i];
		for (j = i; j > 0 && (errs->v[j - 1].line > e.line ||
		    (errs->v[j - 1].line == e.line &&
		    errs->v[j - 1].col > e.col)); j--)
			errs->v[j] = errs->v[j - 1];
		errs->v[j] = e;
	}
}

/* Print "FILE:LINE:COL: message" lines ("FILE: message" without place). */
void
config_errors_print(const struct config_errors *errs, FILE *fp)
{
	const char	*file = errs->file != NULL ? errs->file : "-";
	size_t		 i;

	for (i = 0; i < errs->n; i++) {
		if (errs->v[i].line == 0)
			fprintf(fp, "%s: %s\n", file, errs->v[i].msg);
		else
			fprintf(fp, "%s:%d:%d: %s\n", file, errs->v[i].line,
			    errs->v[i].col, errs->v[i].msg);
	}
}

/* Free all errors and reset the list. */
void
config_errors_clear(struct config_errors *errs)
{
	size_t	i;

	for (i = 0; i < errs->n; i++)
		free(errs->v[i].msg);
	free(errs->v);
	free(errs->file);
	memset(errs, 0, sizeof *errs);
}

/* ---------------------------------------------------------------- */
/* YAML node helpers */

/* Node by index (libyaml stores children as indices). */
static yaml_node_t *
config_node(struct config_ctx *ctx, int index)
{
	return yaml_document_get_node(ctx->doc, index);
}

/* 1 if the node is YAML null: an empty or "~"/"null" plain scalar. */
static int
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
static const char *
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
static size_t
config_map_len(const yaml_node_t *n)
{
	if (n->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(n->data.mapping.pairs.top -
	    n->data.mapping.pairs.start);
}

/* 1 if name matches [a-z0-9_-]{1,32}. */
static int
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
static void
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

/* Store one scalar-kind value into obj according to its schema entry. */
static void
config_store(struct config_ctx *ctx, const struct config_key *k,
    yaml_node_t *val, void *obj)
{
	char		**sp = (char **)((char *)obj + k->off);
	int		 *ip = (int *)((char *)obj + k->off);
	int64_t		 *dp = (int64_t *)((char *)obj + k->off);
	const char	 *s = config_scalar(val);
	char		 *cause, *path;
	long		  l;
	int64_t		  ms;

	switch (k->kind) {
	case CONFIG_STRING:
	case CONFIG_HOST:
	case CONFIG_PATH:
	case CONFIG_ABSPATH:
		if (s == NULL) {
			config_error_at(ctx, val, "\"%s\" must be a string",
			    k->name);
			return;
		}
		if (config_is_null(val) || *s == '\0') {
			config_error_at(ctx, val, "\"%s\" must not be empty",
			    k->name);
			return;
		}
		if (k->kind == CONFIG_HOST && !config_valid_host(s)) {
			config_error_at(ctx, val, "invalid host \"%s\": "
			    "expected a host name or an IP address (IPv6 "
			    "without brackets)", s);
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
		break;
	case CONFIG_PORT:
	case CONFIG_COUNT:
		if (s == NULL || config_parse_long(s, &l) == -1) {
			config_error_at(ctx, val, "\"%s\" must be an integer",
			    k->name);
			return;
		}
		if (k->kind == CONFIG_PORT && (l < 1 || l > 65535)) {
			config_error_at(ctx, val, "port %s out of range "
			    "(1-65535)", s);
			return;
		}
		if (k->kind == CONFIG_COUNT && l < 1) {
			config_error_at(ctx, val, "\"%s\" must be at least 1",
			    k->name);
			return;
		}
		if (l > INT_MAX) {
			config_error_at(ctx, val, "\"%s\" is too large",
			    k->name);
			return;
		}
		*ip = (int)l;
		break;
	case CONFIG_DURATION:
		if (s == NULL || config_is_null(val)) {
			config_error_at(ctx, val, "\"%s\" must be a duration "
			    "such as 10s", k->name);
			return;
		}
		if (config_parse_duration(s, &ms, &cause) == -1) {
			config_error_at(ctx, val, "%s", cause);
			free(cause);
			return;
		}
		if (ms == 0) {
			config_error_at(ctx, val, "\"%s\" must be greater "
			    "than 0", k->name);
			return;
		}
		*dp = ms;
		break;
	case CONFIG_BOOL:
		if (s == NULL || config_parse_bool(s, ip) == -1) {
			config_error_at(ctx, val, "\"%s\" must be true or "
			    "false", k->name);
			return;
		}
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
static void
config_walk(struct config_ctx *ctx, yaml_node_t *map, yaml_node_t *anchor,
    const struct config_key *keys, size_t nkeys, void *obj,
    const char *subject, yaml_node_t **seen)
{
	yaml_node_pair_t	*pair, *prev;
	yaml_node_t		*key, *val, *pkey = NULL;
	const char		*name, *hint, *in, *where;
	size_t			 p, k;

	in = subject != NULL ? "in " : "at top level";
	where = subject != NULL ? subject : "";
	for (k = 0; k < nkeys; k++)
		seen[k] = NULL;
	for (p = 0; p < config_map_len(map); p++) {
		pair = &map->data.mapping.pairs.start[p];
		key = config_node(ctx, pair->key);
		val = config_node(ctx, pair->value);
		if ((name = config_scalar(key)) == NULL) {
			config_error_at(ctx, key, "keys must be plain "
			    "strings");
			continue;
		}
		for (prev = map->data.mapping.pairs.start; prev < pair;
		    prev++) {
			pkey = config_node(ctx, prev->key);
			if (pkey->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)pkey->data.scalar.value,
			    name) == 0)
				break;
		}
		if (prev < pair) {
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

/* ---------------------------------------------------------------- */
/* Servers */

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

/*
 * Check a secret file (identity, passphrase): exists, regular, private
 * mode, readable. Returns 1 if it can be read, 0 otherwise.
 */
static int
config_check_secret(struct config_ctx *ctx, yaml_node_t *node,
    const char *what, const char *path)
{
	struct stat	 st;
	const char	*how;
	int		 fd;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			config_error_at(ctx, node, "%s \"%s\" does not exist",
			    what, path);
		else
			config_error_at(ctx, node, "cannot access %s \"%s\": "
			    "%s", what, path, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error_at(ctx, node, "%s \"%s\" is not a regular file",
		    what, path);
		return 0;
	}
	/* Same rule as OpenSSH: no access at all for group and others. */
	if ((st.st_mode & 077) != 0) {
		if ((st.st_mode & 044) != 0)
			how = "readable";
		else if ((st.st_mode & 022) != 0)
			how = "writable";
		else
			how = "accessible";
		config_error_at(ctx, node, "%s \"%s\" is %s by group or others "
		    "(mode %04o); run chmod 600 \"%s\"", what, path, how,
		    (unsigned)(st.st_mode & 07777), path);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		config_error_at(ctx, node, "cannot read %s \"%s\": %s", what,
		    path, strerror(errno));
		return 0;
	}
	close(fd);
	return 1;
}

/* Check that the identity is a key libssh2 1.10 can use with sshd 9. */
static void
config_check_identity(struct config_ctx *ctx, yaml_node_t *node,
    const struct config_server *srv)
{
	struct keyfile_info	 ki;
	char			*cause;

	if (keyfile_inspect(srv->identity, &ki, &cause) == -1) {
		config_error_at(ctx, node, "%s", cause);
		free(cause);
		return;
	}
	switch (ki.type) {
	case KEYFILE_RSA:
		config_error_at(ctx, node, "identity \"%s\" is an RSA key: "
		    "libssh2 1.10 signs RSA only with ssh-rsa (SHA-1), which "
		    "OpenSSH 8.8 and later refuse; generate an ed25519 key "
		    "with ssh-keygen -t ed25519", srv->identity);
		break;
	case KEYFILE_DSA:
		config_error_at(ctx, node, "identity \"%s\" is a DSA key, "
		    "which OpenSSH 7.0 and later refuse; generate an ed25519 "
		    "key with ssh-keygen -t ed25519", srv->identity);
		break;
	default:
		if (ki.encrypted && srv->passphrase_file == NULL)
			config_error_at(ctx, node, "identity \"%s\" is "
			    "encrypted but server \"%s\" has no "
			    "passphrase_file", srv->identity, srv->name);
		break;
	}
	keyfile_info_clear(&ki);
}

/* Check the files a server names (only with check_files). */
static void
config_check_server_files(struct config_ctx *ctx,
    const struct config_server *srv, yaml_node_t **seen)
{
	struct stat	st;
	yaml_node_t	*n;
	int		 fd;

	if (srv->identity != NULL &&
	    config_check_secret(ctx, seen[CONFIG_SK_IDENTITY],
	    "identity file", srv->identity))
		config_check_identity(ctx, seen[CONFIG_SK_IDENTITY], srv);
	if (srv->passphrase_file != NULL)
		(void)config_check_secret(ctx, seen[CONFIG_SK_PASSPHRASE],
		    "passphrase file", srv->passphrase_file);
	if (srv->known_hosts == NULL)
		return;
	n = seen[CONFIG_SK_KNOWN_HOSTS];
	if (stat(srv->known_hosts, &st) == -1) {
		if (errno == ENOENT)
			config_error_at(ctx, n, "known_hosts file \"%s\" does "
			    "not exist", srv->known_hosts);
		else
			config_error_at(ctx, n, "cannot access known_hosts "
			    "file \"%s\": %s", srv->known_hosts,
			    strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error_at(ctx, n, "known_hosts file \"%s\" is not a "
		    "regular file", srv->known_hosts);
		return;
	}
	if ((fd = open(srv->known_hosts, O_RDONLY | O_CLOEXEC)) == -1) {
		config_error_at(ctx, n, "cannot read known_hosts file \"%s\": "
		    "%s", srv->known_hosts, strerror(errno));
		return;
	}
	close(fd);
}

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
		config_check_server_files(ctx, srv, seen);
out:
	free(subject);
}

/* Parse the servers: mapping (name -> server). */
static void
config_parse_servers(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	yaml_node_pair_t	*pair, *prev;
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
	for (i = 0; i < config_map_len(val); i++) {
		pair = &val->data.mapping.pairs.start[i];
		k = config_node(ctx, pair->key);
		if ((name = config_scalar(k)) == NULL) {
			config_error_at(ctx, k, "server names must be plain "
			    "strings");
			continue;
		}
		for (prev = val->data.mapping.pairs.start; prev < pair;
		    prev++) {
			pk = config_node(ctx, prev->key);
			if (pk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)pk->data.scalar.value,
			    name) == 0)
				break;
		}
		if (prev < pair) {
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
	size_t			 i;

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
	for (i = 0; i < n->n_server_names; i++) {
		if (strcmp(n->server_names[i], name) == 0) {
			config_error_at(ctx, node, "server_name \"%s\" is "
			    "listed twice", name);
			free(name);
			return;
		}
	}
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
	    item < val->data.sequence.items.top; item++)
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

/* Parse remote: the server-side listen address (TCP only). */
static void
config_parse_remote(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	const char		*s = config_scalar(val);
	char			*cause;

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
	if (addr_parse(s, "127.0.0.1", ADDR_ALLOW_PORT_ZERO, &t->remote,
	    &cause) == -1) {
		config_error_at(ctx, val, "%s", cause);
		free(cause);
		return;
	}
	ctx->cur->remote_ok = 1;
}

/* Parse local: the target on this machine (TCP or unix socket). */
static void
config_parse_local(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config_tunnel	*t = obj;
	const char		*s = config_scalar(val);
	char			*cause;

	(void)key;
	if (s == NULL || config_is_null(val)) {
		config_error_at(ctx, val, "\"local\" must be a port, an "
		    "address such as \"127.0.0.1:1313\" or \"unix:/PATH\"");
		return;
	}
	if (addr_parse(s, "127.0.0.1", ADDR_ALLOW_UNIX, &t->local,
	    &cause) == -1) {
		config_error_at(ctx, val, "%s", cause);
		free(cause);
	}
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
static void
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
	    it < val->data.sequence.items.top; it++) {
		index = (size_t)(it - val->data.sequence.items.start);
		item = config_node(ctx, *it);
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

/* ---------------------------------------------------------------- */
/* Top level */

static const struct config_key config_backoff_keys[] = {
	{ "initial", CONFIG_DURATION,
	    offsetof(struct config, backoff_initial_ms), 0, NULL },
	{ "max", CONFIG_DURATION,
	    offsetof(struct config, backoff_max_ms), 0, NULL },
};

/* Parse backoff: {initial, max}; initial must not exceed max. */
static void
config_parse_backoff(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	struct config	*cfg = obj;
	yaml_node_t	*seen[ARRAY_LEN(config_backoff_keys)];
	char		 a[32], b[32];

	if (config_is_null(val))
		return;
	if (val->type != YAML_MAPPING_NODE) {
		config_error_at(ctx, val, "\"backoff\" must be a mapping with "
		    "initial and max");
		return;
	}
	config_walk(ctx, val, key, config_backoff_keys,
	    ARRAY_LEN(config_backoff_keys), cfg, "backoff", seen);
	if (cfg->backoff_initial_ms <= cfg->backoff_max_ms)
		return;
	config_format_duration(cfg->backoff_initial_ms, a, sizeof a);
	config_format_duration(cfg->backoff_max_ms, b, sizeof b);
	config_error_at(ctx, seen[0] != NULL ? seen[0] : seen[1],
	    "backoff initial (%s) is greater than max (%s)", a, b);
}

static const struct config_key config_top_keys[] = {
	{ "control", CONFIG_PATH, offsetof(struct config, control), 0, NULL },
	{ "state_dir", CONFIG_PATH, offsetof(struct config, state_dir), 0,
	    NULL },
	{ "servers", CONFIG_CUSTOM, 0, 0, config_parse_servers },
	{ "tunnels", CONFIG_CUSTOM, 0, 0, config_parse_tunnels },
	{ "backoff", CONFIG_CUSTOM, 0, 0, config_parse_backoff },
};

/* ---------------------------------------------------------------- */
/* Checks across tunnels */

/*
 * 1 if two remote listeners would collide on one server: the same port
 * and host, or a wildcard of the same family as the other host.
 */
static int
config_remote_overlap(const struct addr *a, const struct addr *b)
{
	if (a->port != b->port)
		return 0;
	if (strcmp(a->host, b->host) == 0)
		return 1;
	if (strcmp(a->host, "0.0.0.0") == 0 || strcmp(b->host, "0.0.0.0") == 0)
		return !addr_is_ipv6(a) && !addr_is_ipv6(b);
	/* sshd sets IPV6_V6ONLY, so "::" only covers IPv6 addresses. */
	if (strcmp(a->host, "::") == 0 || strcmp(b->host, "::") == 0)
		return addr_is_ipv6(a) && addr_is_ipv6(b);
	return 0;
}

/* Resolve a tunnel's server by name, or the only server when omitted. */
static int
config_resolve_server(struct config_ctx *ctx, size_t i)
{
	struct config		*cfg = ctx->cfg;
	struct config_tunnel	*t = &cfg->tunnels[i];
	struct config_tmark	*m = &ctx->tmarks[i];
	struct buf		 known;
	size_t			 j;

	if (t->server == NULL && m->server != NULL)
		return 0;	/* present but invalid: already reported */
	if (t->server == NULL) {
		if (cfg->n_servers == 1) {
			t->server = xstrdup(cfg->servers[0].name);
			t->server_index = 0;
			return 1;
		}
		if (cfg->n_servers == 0) {
			config_error_at(ctx, m->item, "%s has no \"server\" "
			    "and no servers are defined", m->subject);
			return 0;
		}
	} else {
		for (j = 0; j < cfg->n_servers; j++) {
			if (strcmp(cfg->servers[j].name, t->server) == 0) {
				t->server_index = j;
				return 1;
			}
		}
	}
	buf_init(&known);
	for (j = 0; j < cfg->n_servers; j++)
		buf_printf(&known, "%s%s", j > 0 ? ", " : "",
		    cfg->servers[j].name);
	if (t->server == NULL)
		config_error_at(ctx, m->item, "%s must name its server with "
		    "\"server:\" when several are defined (%s)", m->subject,
		    buf_cstr(&known));
	else if (cfg->n_servers == 0)
		config_error_at(ctx, m->server, "%s names unknown server "
		    "\"%s\" (no servers are defined)", m->subject, t->server);
	else
		config_error_at(ctx, m->server, "%s names unknown server "
		    "\"%s\" (known: %s)", m->subject, t->server,
		    buf_cstr(&known));
	buf_clear(&known);
	return 0;
}

/* Report a server_name of tunnel i that an earlier tunnel already uses. */
static void
config_check_server_names(struct config_ctx *ctx, size_t i)
{
	struct config		*cfg = ctx->cfg;
	struct config_nginx	*n = cfg->tunnels[i].nginx, *o;
	size_t			 j, k, l;

	if (n == NULL)
		return;
	for (k = 0; k < n->n_server_names; k++) {
		for (j = 0; j < i; j++) {
			if ((o = cfg->tunnels[j].nginx) == NULL)
				continue;
			for (l = 0; l < o->n_server_names; l++)
				if (strcmp(o->server_names[l],
				    n->server_names[k]) == 0)
					break;
			if (l < o->n_server_names) {
				config_error_at(ctx, ctx->tmarks[i].names[k],
				    "server_name \"%s\" is already used by %s",
				    n->server_names[k],
				    ctx->tmarks[j].subject);
				break;
			}
		}
	}
}

/* Report the first earlier tunnel whose remote collides with tunnel i. */
static void
config_check_remote(struct config_ctx *ctx, size_t i, const int *server_ok)
{
	struct config_tunnel	*t = &ctx->cfg->tunnels[i], *o;
	struct config_tmark	*m = &ctx->tmarks[i];
	char			 a[ADDR_TEXT_MAX], b[ADDR_TEXT_MAX];
	size_t			 j;

	/* Port 0 lets the server choose: never a collision. */
	if (!server_ok[i] || !m->remote_ok || t->remote.port == 0)
		return;
	for (j = 0; j < i; j++) {
		o = &ctx->cfg->tunnels[j];
		if (!server_ok[j] || !ctx->tmarks[j].remote_ok ||
		    o->server_index != t->server_index ||
		    !config_remote_overlap(&t->remote, &o->remote))
			continue;
		addr_format(&t->remote, a, sizeof a);
		addr_format(&o->remote, b, sizeof b);
		if (addr_equal(&t->remote, &o->remote))
			config_error_at(ctx, m->remote, "%s uses remote %s on "
			    "server \"%s\" already used by %s", m->subject, a,
			    t->server, ctx->tmarks[j].subject);
		else
			config_error_at(ctx, m->remote, "%s uses remote %s on "
			    "server \"%s\", which overlaps %s of %s",
			    m->subject, a, t->server, b,
			    ctx->tmarks[j].subject);
		return;
	}
}

/* Check what needs all tunnels: names, servers, remotes, server_names. */
static void
config_resolve(struct config_ctx *ctx)
{
	struct config		*cfg = ctx->cfg;
	struct config_tunnel	*t;
	int			*server_ok;
	size_t			 i, j, line;

	server_ok = xcalloc(cfg->n_tunnels, sizeof *server_ok);
	for (i = 0; i < cfg->n_tunnels; i++) {
		t = &cfg->tunnels[i];
		for (j = 0; t->name != NULL && j < i; j++) {
			if (cfg->tunnels[j].name == NULL ||
			    strcmp(cfg->tunnels[j].name, t->name) != 0)
				continue;
			line = ctx->tmarks[j].name->start_mark.line + 1;
			config_error_at(ctx, ctx->tmarks[i].name, "duplicate "
			    "tunnel name \"%s\" (first defined at line %zu)",
			    t->name, line);
			break;
		}
		server_ok[i] = config_resolve_server(ctx, i);
		config_check_remote(ctx, i, server_ok);
		config_check_server_names(ctx, i);
	}
	free(server_ok);
}

/* ---------------------------------------------------------------- */
/* Entry points */

/* Report a libyaml failure at the place it names. */
static void
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

/* The absolute directory of the config file, for relative paths. */
static char *
config_basedir(const char *path)
{
	const char	*slash = strrchr(path, '/');
	char		*dir, *cwd, *abs;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	if (*dir == '/')
		return dir;
	/* Best effort: without a cwd, keep the relative directory. */
	if ((cwd = getcwd(NULL, 0)) == NULL)
		return dir;
	if (strcmp(dir, ".") == 0)
		abs = xstrdup(cwd);
	else if (strcmp(cwd, "/") == 0)
		abs = xasprintf("/%s", strncmp(dir, "./", 2) == 0 ? dir + 2 :
		    dir);
	else
		abs = xasprintf("%s/%s", cwd, strncmp(dir, "./", 2) == 0 ?
		    dir + 2 : dir);
	free(cwd);
	free(dir);
	return abs;
}

/* Walk the root mapping and run the checks across tunnels. */
static void
config_parse_root(struct config_ctx *ctx, yaml_node_t *root)
{
	struct sockaddr_un	 sun;
	yaml_node_t		*seen[ARRAY_LEN(config_top_keys)];

	if (root == NULL || config_is_null(root)) {
		config_error_add(ctx->errs, 0, 0, xstrdup("empty "
		    "configuration: expected a mapping with \"servers\" and "
		    "\"tunnels\""));
		return;
	}
	if (root->type != YAML_MAPPING_NODE) {
		config_error_at(ctx, root, "the configuration must be a "
		    "mapping with \"servers\" and \"tunnels\"");
		return;
	}
	config_walk(ctx, root, root, config_top_keys,
	    ARRAY_LEN(config_top_keys), ctx->cfg, NULL, seen);
	/* bind() on a unix socket fails later, far from the cause. */
	if (seen[0] != NULL && strlen(ctx->cfg->control) >= sizeof sun.sun_path)
		config_error_at(ctx, seen[0], "\"control\" path \"%s\" is too "
		    "long for a unix socket (%zu bytes, at most %zu)",
		    ctx->cfg->control, strlen(ctx->cfg->control),
		    sizeof sun.sun_path - 1);
	config_resolve(ctx);
}

/* Parse YAML text into a config (see config.h). */
struct config *
config_parse(const char *path, const char *text, size_t len,
    int check_files, struct config_errors *errs)
{
	struct config_ctx	 ctx;
	struct config		*cfg;
	yaml_parser_t		 parser;
	yaml_document_t		 doc, extra;
	yaml_node_t		*root;
	int			 have_doc = 0;
	size_t			 i;

	if (errs->file == NULL)
		errs->file = xstrdup(path);
	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = xstrdup(path);
	cfg->control = xstrdup(CONFIG_DEFAULT_CONTROL);
	cfg->state_dir = xstrdup(CONFIG_DEFAULT_STATE);
	cfg->backoff_initial_ms = CONFIG_BACKOFF_INITIAL;
	cfg->backoff_max_ms = CONFIG_BACKOFF_MAX;

	memset(&ctx, 0, sizeof ctx);
	ctx.cfg = cfg;
	ctx.errs = errs;
	ctx.doc = &doc;
	ctx.basedir = config_basedir(path);
	ctx.check_files = check_files;

	if (!yaml_parser_initialize(&parser)) {
		config_error_add(errs, 0, 0, xstrdup("cannot initialise the "
		    "YAML parser"));
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
	    len);
	if (!yaml_parser_load(&parser, &doc)) {
		config_yaml_error(&ctx, &parser, text, len);
		goto out_parser;
	}
	have_doc = 1;
	root = yaml_document_get_root_node(&doc);
	config_parse_root(&ctx, root);
	/* A second document would be silently ignored: refuse it. */
	if (root != NULL) {
		if (!yaml_parser_load(&parser, &extra))
			config_yaml_error(&ctx, &parser, text, len);
		else {
			if ((root = yaml_document_get_root_node(&extra)) !=
			    NULL)
				config_error_at(&ctx, root, "more than one "
				    "YAML document; the configuration must "
				    "be a single document");
			yaml_document_delete(&extra);
		}
	}
out_parser:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
out:
	for (i = 0; i < cfg->n_tunnels && ctx.tmarks != NULL; i++) {
		free(ctx.tmarks[i].names);
		free(ctx.tmarks[i].subject);
	}
	free(ctx.tmarks);
	free(ctx.basedir);
	config_errors_sort(errs);
	if (errs->n > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Read a whole config file into memory; 0 or -1 with an error added. */
static int
config_read(const char *path, char **text, size_t *len,
    struct config_errors *errs)
{
	char		*buf = NULL;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	buf = xmalloc(CONFIG_FILE_MAX + 1);
	/* Read one byte more than allowed to notice oversized files. */
	while (n <= CONFIG_FILE_MAX) {
		r = read(fd, buf + n, CONFIG_FILE_MAX + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_FILE_MAX) {
		config_error_add(errs, 0, 0, xasprintf("cannot read \"%s\": "
		    "larger than %d bytes", path, CONFIG_FILE_MAX));
		goto out;
	}
	*text = buf;
	*len = n;
	buf = NULL;
	rv = 0;
	goto out;
fail:
	config_error_add(errs, 0, 0, xasprintf("cannot read \"%s\": %s", path,
	    strerror(errno)));
out:
	free(buf);
	if (fd != -1)
		close(fd);
	return rv;
}

/* Read and parse a config file, checking the files it names. */
struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config	*cfg;
	char		*text;
	size_t		 len;

	if (errs->file == NULL)
		errs->file = xstrdup(path);
	if (config_read(path, &text, &len, errs) == -1)
		return NULL;
	cfg = config_parse(path, text, len, 1, errs);
	free(text);
	return cfg;
}

/* Free an nginx section. */
static void
config_nginx_free(struct config_nginx *n)
{
	size_t	i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n_server_names; i++)
		free(n->server_names[i]);
	free(n->server_names);
	free(n->cert);
	free(n->key);
	free(n->client_max_body_size);
	free(n->acme_webroot);
	free(n);
}

/* Free a config and everything it owns. */
void
config_free(struct config *cfg)
{
	struct config_server	*s;
	size_t			 i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->n_servers; i++) {
		s = &cfg->servers[i];
		free(s->name);
		free(s->host);
		free(s->user);
		free(s->identity);
		free(s->passphrase_file);
		free(s->known_hosts);
		free(s->host_key);
	}
	free(cfg->servers);
	for (i = 0; i < cfg->n_tunnels; i++) {
		free(cfg->tunnels[i].name);
		free(cfg->tunnels[i].server);
		config_nginx_free(cfg->tunnels[i].nginx);
	}
	free(cfg->tunnels);
	free(cfg->path);
	free(cfg->control);
	free(cfg->state_dir);
	free(cfg);
}

/* The server with this name, or NULL. */
const struct config_server *
config_server_find(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->n_servers; i++)
		if (strcmp(cfg->servers[i].name, name) == 0)
			return &cfg->servers[i];
	return NULL;
}

/* The tunnel with this name, or NULL. */
const struct config_tunnel *
config_tunnel_find(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (strcmp(cfg->tunnels[i].name, name) == 0)
			return &cfg->tunnels[i];
	return NULL;
}

/* 1 if both strings are NULL or equal. */
static int
config_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* 1 if two servers are configured identically (positions ignored). */
int
config_server_equal(const struct config_server *a,
    const struct config_server *b)
{
	return config_str_equal(a->name, b->name) &&
	    config_str_equal(a->host, b->host) &&
	    a->port == b->port &&
	    config_str_equal(a->user, b->user) &&
	    config_str_equal(a->identity, b->identity) &&
	    config_str_equal(a->passphrase_file, b->passphrase_file) &&
	    config_str_equal(a->known_hosts, b->known_hosts) &&
	    config_str_equal(a->host_key, b->host_key) &&
	    a->keepalive_ms == b->keepalive_ms &&
	    a->keepalive_count == b->keepalive_count &&
	    a->connect_timeout_ms == b->connect_timeout_ms &&
	    a->reclaim_stale_port == b->reclaim_stale_port;
}

/* 1 if two nginx sections are identical (both may be NULL). */
static int
config_nginx_equal(const struct config_nginx *a, const struct config_nginx *b)
{
	size_t	i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->n_server_names != b->n_server_names)
		return 0;
	for (i = 0; i < a->n_server_names; i++)
		if (strcmp(a->server_names[i], b->server_names[i]) != 0)
			return 0;
	return a->tls == b->tls &&
	    config_str_equal(a->cert, b->cert) &&
	    config_str_equal(a->key, b->key) &&
	    a->websocket == b->websocket &&
	    config_str_equal(a->client_max_body_size,
	    b->client_max_body_size) &&
	    config_str_equal(a->acme_webroot, b->acme_webroot);
}

/*
 * 1 if two tunnels are configured identically. Positions and
 * server_index are ignored: moving a tunnel or adding a server in front
 * of its own must not restart it.
 */
int
config_tunnel_equal(const struct config_tunnel *a,
    const struct config_tunnel *b)
{
	return config_str_equal(a->name, b->name) &&
	    config_str_equal(a->server, b->server) &&
	    addr_equal(&a->remote, &b->remote) &&
	    addr_equal(&a->local, &b->local) &&
	    config_nginx_equal(a->nginx, b->nginx);
}
