/*
 * The configuration loader: libyaml's document tree -> struct config.
 * This file holds the entry points, the root mapping and the checks that
 * need every tunnel (servers named, remotes that collide, server_names
 * used twice), and the comparisons a reload uses. The generic walker is
 * in config_yaml.c, the sections in config_server.c and config_tunnel.c,
 * the filesystem checks in config_files.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "addr.h"
#include "config.h"
#include "config_int.h"
#include "rfile.h"
#include "util.h"

#define CONFIG_FILE_MAX		(1024 * 1024)
#define CONFIG_BACKOFF_INITIAL	1000
#define CONFIG_BACKOFF_MAX	60000

/* ---------------------------------------------------------------- */
/* Errors */

/* Stable sort by line, then column (insertion sort: lists are short). */
static void
config_errors_sort_list(struct config_error *v, size_t n)
{
	struct config_error	 e;
	size_t			 i, j;

	for (i = 1; i < n; i++) {
		e = v[i];
		for (j = i; j > 0 && (v[j - 1].line > e.line ||
		    (v[j - 1].line == e.line && v[j - 1].col > e.col)); j--)
			v[j] = v[j - 1];
		v[j] = e;
	}
}

/* Sort the errors and the warnings by place. */
static void
config_errors_sort(struct config_errors *errs)
{
	config_errors_sort_list(errs->v, errs->n);
	config_errors_sort_list(errs->warn, errs->n_warn);
}

/* Append a warning located at a node's start (NULL: no place). */
void
config_warning_at(struct config_ctx *ctx, const yaml_node_t *node,
    const char *fmt, ...)
{
	struct config_errors	*errs = ctx->errs;
	struct config_error	*w;
	va_list			 ap;

	errs->warn = xreallocarray(errs->warn, errs->n_warn + 1,
	    sizeof *errs->warn);
	w = &errs->warn[errs->n_warn++];
	va_start(ap, fmt);
	w->msg = xvasprintf(fmt, ap);
	va_end(ap);
	w->line = node != NULL ? (int)node->start_mark.line + 1 : 0;
	w->col = node != NULL ? (int)node->start_mark.column + 1 : 0;
}

/* Print "FILE:LINE:COL: warning: message" lines. */
void
config_warnings_print(const struct config_errors *errs, FILE *fp)
{
	const char	*file = errs->file != NULL ? errs->file : "-";
	size_t		 i;

	for (i = 0; i < errs->n_warn; i++) {
		if (errs->warn[i].line == 0)
			fprintf(fp, "%s: warning: %s\n", file,
			    errs->warn[i].msg);
		else
			fprintf(fp, "%s:%d:%d: warning: %s\n", file,
			    errs->warn[i].line, errs->warn[i].col,
			    errs->warn[i].msg);
	}
}

/* Print "FILE:LINE:COL: message" lines ("FILE: message" without place). */
void
config_errors_print(const struct config_errors *errs, FILE *fp)
{
	char	*line;
	size_t	 i;

	for (i = 0; i < errs->n; i++) {
		line = config_error_text(errs, i);
		fprintf(fp, "%s\n", line);
		free(line);
	}
	if (errs->truncated)
		fprintf(fp, "%s: stopped after %zu problems; fix these first\n",
		    errs->file != NULL ? errs->file : "-", errs->n);
}

/* Error i as "FILE:LINE:COL: message", or "FILE: message" (malloc'd). */
char *
config_error_text(const struct config_errors *errs, size_t i)
{
	const char	*file = errs->file != NULL ? errs->file : "-";

	if (errs->v[i].line == 0)
		return xasprintf("%s: %s", file, errs->v[i].msg);
	return xasprintf("%s:%d:%d: %s", file, errs->v[i].line,
	    errs->v[i].col, errs->v[i].msg);
}

/* Free all errors and reset the list. */
void
config_errors_clear(struct config_errors *errs)
{
	size_t	i;

	for (i = 0; i < errs->n; i++)
		free(errs->v[i].msg);
	free(errs->v);
	for (i = 0; i < errs->n_warn; i++)
		free(errs->warn[i].msg);
	free(errs->warn);
	free(errs->file);
	memset(errs, 0, sizeof *errs);
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

/* Parse receive_window_budget: 0 turns autotuning off everywhere. */
static void
config_parse_window_budget(struct config_ctx *ctx, yaml_node_t *key,
    yaml_node_t *val, void *obj)
{
	(void)key;
	(void)obj;
	(void)config_size_at(ctx, val, "receive_window_budget", 0,
	    UINT64_C(1) << 40, &ctx->cfg->receive_window_budget);
}

static const struct config_key config_top_keys[] = {
	{ "control", CONFIG_PATH, offsetof(struct config, control), 0, NULL },
	{ "state_dir", CONFIG_PATH, offsetof(struct config, state_dir), 0,
	    NULL },
	{ "servers", CONFIG_CUSTOM, 0, 0, config_parse_servers },
	{ "tunnels", CONFIG_CUSTOM, 0, 0, config_parse_tunnels },
	{ "backoff", CONFIG_CUSTOM, 0, 0, config_parse_backoff },
	{ "receive_window_budget", CONFIG_CUSTOM, 0, 0,
	    config_parse_window_budget },
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
	ssize_t			 found;

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
	} else if ((found = config_server_index(cfg, t->server)) != -1) {
		t->server_index = (size_t)found;
		return 1;
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

/* One server_name of one tunnel, for config_check_server_names. */
struct config_sname {
	const char	*name;
	size_t		 tunnel, k;
};

/* Order by name, then by position in the file. */
static int
config_sname_cmp(const void *a, const void *b)
{
	const struct config_sname	*x = a, *y = b;
	int				 c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	if (x->tunnel != y->tunnel)
		return x->tunnel < y->tunnel ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/*
 * Report each server_name listed twice in one tunnel, or already used by
 * an earlier tunnel (the first one). Sorted, not compared pairwise: a
 * file may list tens of thousands of names.
 */
static void
config_check_server_names(struct config_ctx *ctx)
{
	struct config		*cfg = ctx->cfg;
	struct config_nginx	*n;
	struct config_sname	*v, *e, *first;
	size_t			 i, k, nv = 0, total = 0;

	for (i = 0; i < cfg->n_tunnels; i++)
		if ((n = cfg->tunnels[i].nginx) != NULL)
			total += n->n_server_names;
	if (total == 0)
		return;
	v = xreallocarray(NULL, total, sizeof *v);
	for (i = 0; i < cfg->n_tunnels; i++) {
		if ((n = cfg->tunnels[i].nginx) == NULL)
			continue;
		for (k = 0; k < n->n_server_names; k++) {
			v[nv].name = n->server_names[k];
			v[nv].tunnel = i;
			v[nv++].k = k;
		}
	}
	qsort(v, nv, sizeof *v, config_sname_cmp);
	for (first = v, e = v + 1; e < v + nv; e++) {
		if (strcmp(e->name, first->name) != 0) {
			first = e;
			continue;
		}
		if (e[-1].tunnel == e->tunnel)
			config_error_at(ctx, ctx->tmarks[e->tunnel].names[e->k],
			    "server_name \"%s\" is listed twice", e->name);
		else
			config_error_at(ctx, ctx->tmarks[e->tunnel].names[e->k],
			    "server_name \"%s\" is already used by %s",
			    e->name, ctx->tmarks[first->tunnel].subject);
	}
	free(v);
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
	}
	free(server_ok);
	config_check_server_names(ctx);
}

/* ---------------------------------------------------------------- */
/* Entry points */

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
	cfg->receive_window_budget = CONFIG_DEFAULT_WINDOW_BUDGET;

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
	if (config_yaml_limits(&ctx, text, len) == -1)
		goto out_parser;
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

/*
 * Read a whole config file into memory: 0, or with an error added -1
 * when it cannot be read and -2 when it is no config (not a regular
 * file, too large). Only
 * a regular file is read, opened without blocking: a FIFO or a terminal
 * in its place would hang check, run, a reload and status.
 */
static int
config_read(const char *path, char **text, size_t *len,
    struct config_errors *errs)
{
	struct stat	 st;
	const char	*notreg;
	char		*buf = NULL;
	size_t		 n = 0, size;
	ssize_t		 r;
	int		 fd, rv = -1;

	if ((fd = rfile_open(path, &st, &notreg)) == -1) {
		if (notreg != NULL) {
			config_error_add(errs, 0, 0, xasprintf("not a regular "
			    "file (%s)", notreg));
			return -2;
		}
		goto fail;
	}
	if (st.st_size > CONFIG_FILE_MAX)
		goto big;
	/* Sized by fstat, one byte more to notice a file that grew. */
	size = (size_t)st.st_size + 1;
	buf = xmalloc(size);
	/* Read one byte more than allowed to notice oversized files. */
	while (n <= CONFIG_FILE_MAX) {
		if (n == size) {
			size = CONFIG_FILE_MAX + 1;
			buf = xrealloc(buf, size);
		}
		r = read(fd, buf + n, size - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_FILE_MAX)
		goto big;
	*text = buf;
	*len = n;
	buf = NULL;
	rv = 0;
	goto out;
big:
	config_error_add(errs, 0, 0, xasprintf("too large: a configuration "
	    "may have at most %d bytes", CONFIG_FILE_MAX));
	rv = -2;
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

/*
 * The top-level control: scalar, scanning libyaml's events: those before
 * a syntax error are delivered too, so a file broken further down still
 * names its socket.
 */
static char *
config_control_scan(const char *text, size_t len)
{
	yaml_parser_t	 parser;
	yaml_event_t	 ev;
	char		*found = NULL;
	int		 depth = 0, key_pos = 1, want = 0, done = 0;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && yaml_parser_parse(&parser, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (depth == 1)
				want = 0;
			/* libyaml slows quadratically with depth: stop. */
			if (++depth > CONFIG_DEPTH_MAX)
				done = 1;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (--depth == 1)
				key_pos = !key_pos;
			break;
		case YAML_SCALAR_EVENT:
			if (depth != 1)
				break;
			if (key_pos)
				want = strcmp((char *)ev.data.scalar.value,
				    "control") == 0;
			else if (want && ev.data.scalar.length > 0) {
				free(found);
				found = xstrdup((char *)ev.data.scalar.value);
				want = 0;
			}
			key_pos = !key_pos;
			break;
		case YAML_ALIAS_EVENT:
			if (depth == 1) {
				want = 0;
				key_pos = !key_pos;
			}
			break;
		case YAML_DOCUMENT_END_EVENT:
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return found;
}

/*
 * The control socket path named by a config file, however broken the
 * rest of the file is (status and reload must reach the daemon even when
 * the file on disk no longer validates); the default when the file
 * cannot be read or names none. NULL with *cause ("FILE: message") when
 * the file is no config at all: not a regular file, or too large.
 */
char *
config_control_path(const char *path, char **cause)
{
	struct config_errors	 errs;
	char			*text = NULL, *found, *dir;
	size_t			 len;
	int			 rc;

	*cause = NULL;
	memset(&errs, 0, sizeof errs);
	errs.file = xstrdup(path);
	if ((rc = config_read(path, &text, &len, &errs)) < 0) {
		if (rc == -2)
			*cause = config_error_text(&errs, 0);
		config_errors_clear(&errs);
		return rc == -2 ? NULL : xstrdup(CONFIG_DEFAULT_CONTROL);
	}
	config_errors_clear(&errs);
	found = config_control_scan(text, len);
	free(text);
	if (found == NULL)
		return xstrdup(CONFIG_DEFAULT_CONTROL);
	if (*found != '/') {
		/* Relative paths are relative to the config file, as in run. */
		dir = config_basedir(path);
		text = xasprintf("%s/%s", dir, found);
		free(dir);
		free(found);
		found = text;
	}
	return found;
}

/* Read and parse a config file; check_files as for config_parse(). */
struct config *
config_load_ex(const char *path, int check_files, struct config_errors *errs)
{
	struct config	*cfg;
	char		*text;
	size_t		 len;

	if (errs->file == NULL)
		errs->file = xstrdup(path);
	if (config_read(path, &text, &len, errs) < 0)
		return NULL;
	cfg = config_parse(path, text, len, check_files, errs);
	free(text);
	return cfg;
}

/* Read and parse a config file, checking the files it names. */
struct config *
config_load(const char *path, struct config_errors *errs)
{
	return config_load_ex(path, 1, errs);
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

/* ---------------------------------------------------------------- */
/* Lookups and the comparisons of a reload */

/* The index of the server with this name, or -1. */
ssize_t
config_server_index(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->n_servers; i++)
		if (strcmp(cfg->servers[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* The index of the tunnel with this name, or -1. */
ssize_t
config_tunnel_index(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->n_tunnels; i++)
		if (strcmp(cfg->tunnels[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
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
int
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
 * 1 if two tunnels forward identically. Positions and server_index are
 * ignored: moving a tunnel or adding a server in front of its own must
 * not restart it. So is the nginx section: only `tunnels nginx` reads it,
 * and a reload must not drop a tunnel's connections for it.
 */
int
config_tunnel_equal(const struct config_tunnel *a,
    const struct config_tunnel *b)
{
	return config_str_equal(a->name, b->name) &&
	    config_str_equal(a->server, b->server) &&
	    addr_equal(&a->remote, &b->remote) &&
	    addr_equal(&a->local, &b->local);
}
