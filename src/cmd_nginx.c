/*
 * `tunnels nginx`: the nginx server blocks for the VPS. The config is
 * parsed without the filesystem checks (the nginx host has no identity
 * file). `-o DIR` replaces its files atomically, so nginx never reads a
 * half-written one, and never deletes a file: generated files of servers
 * gone from the config are only reported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "atomicfile.h"
#include "cmd_common.h"
#include "cmd_nginx.h"
#include "config.h"
#include "keyfile.h"
#include "nginx.h"
#include "util.h"

/* Long-only options. */
enum {
	CMD_OPT_SERVER = 256,
	CMD_OPT_HTTP_PORT,
	CMD_OPT_HTTPS_PORT
};

/* Parse a TCP port argument (1-65535); -1 when invalid. */
static int
cmd_parse_port(const char *s)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -1;
	return (int)v;
}

/*
 * Replace dir/name with data, atomically (a crash leaves the old file or
 * the new one, never a truncated one that would stop nginx from
 * reloading). Returns 0, or -1 after printing why.
 */
static int
cmd_write_file(const char *dir, const char *name, const char *data,
    size_t len)
{
	enum atomicfile_step	 step;
	char			*path;
	int			 rv;

	path = xasprintf("%s/%s", dir, name);
	/* nginx workers may need to read it. */
	if ((rv = atomicfile_write(path, data, len, 0644, &step)) == 0)
		printf("wrote %s\n", path);
	else if (step == ATOMICFILE_CREATE)
		fprintf(stderr, "tunnels: cannot create a file in %s: %s\n",
		    dir, strerror(errno));
	else
		fprintf(stderr, "tunnels: cannot %s %s: %s\n",
		    step == ATOMICFILE_WRITE ? "write" : "replace", path,
		    strerror(errno));
	free(path);
	return rv;
}

/* 1 if the file starts with the generated-file header. */
static int
cmd_is_generated(const char *path)
{
	char	head[sizeof NGINX_HEADER_MARK - 1];
	ssize_t	r;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	r = read(fd, head, sizeof head);
	close(fd);
	return r == (ssize_t)sizeof head &&
	    memcmp(head, NGINX_HEADER_MARK, sizeof head) == 0;
}

/*
 * Report generated files of servers that are no longer in the config.
 * They are left alone: the directory is nginx's, and a file we did not
 * write for this config may belong to another tunnels config.
 */
static void
cmd_report_stale(const struct config *cfg, const char *cfg_path,
    const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	const char	*name;
	char		*server, *path;
	size_t		 plen = strlen(NGINX_FILE_PREFIX);
	size_t		 slen = strlen(NGINX_FILE_SUFFIX), len;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		name = de->d_name;
		len = strlen(name);
		if (len <= plen + slen ||
		    strncmp(name, NGINX_FILE_PREFIX, plen) != 0 ||
		    strcmp(name + len - slen, NGINX_FILE_SUFFIX) != 0)
			continue;
		server = xstrndup(name + plen, len - plen - slen);
		path = xasprintf("%s/%s", dir, name);
		if (config_server_find(cfg, server) == NULL &&
		    cmd_is_generated(path))
			fprintf(stderr, "tunnels: warning: %s was generated "
			    "for server \"%s\", which %s no longer defines: "
			    "remove it if it is not from another config\n",
			    path, server, cfg_path);
		free(path);
		free(server);
	}
	closedir(d);
}

/*
 * cert_exists callback: stat(2) on the nginx host. Only a definite "no
 * such file" counts as missing: /etc/letsencrypt/live is root-only, and
 * a non-root run must not turn working TLS blocks into pending ones.
 */
static int
cmd_cert_exists(const char *path, void *arg)
{
	struct stat	st;

	(void)arg;
	if (stat(path, &st) == 0)
		return 1;
	return errno != ENOENT && errno != ENOTDIR;
}

/* -o DIR: the default file and one file per selected server. */
static int
cmd_nginx_write(const struct config *cfg, struct nginx_options *o,
    ssize_t only, struct buf *warn)
{
	struct buf	 b;
	struct stat	 st;
	char		*name, *dir;
	size_t		 si, len;
	int		 rv = 0;

	if (stat(o->out_dir, &st) == -1) {
		fprintf(stderr, "tunnels: %s: %s\n", o->out_dir,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tunnels: %s: not a directory\n", o->out_dir);
		return -1;
	}
	o->cert_exists = cmd_cert_exists;
	/* "conf.d/" names the same directory; print "conf.d/x", not "//". */
	dir = xstrdup(o->out_dir);
	for (len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
		dir[len - 1] = '\0';
	o->out_dir = dir;
	buf_init(&b);
	/* Always from the whole config: it must cover every server's TLS. */
	nginx_render_default(cfg, o, &b);
	if (cmd_write_file(o->out_dir, NGINX_DEFAULT_FILE, buf_cstr(&b),
	    b.len) == -1)
		rv = -1;
	for (si = 0; si < cfg->n_servers && rv == 0; si++) {
		if (only != -1 && (size_t)only != si)
			continue;
		buf_clear(&b);
		nginx_render_server(cfg, si, o, &b, warn);
		name = xasprintf(NGINX_FILE_PREFIX "%s" NGINX_FILE_SUFFIX,
		    cfg->servers[si].name);
		if (cmd_write_file(o->out_dir, name, buf_cstr(&b), b.len) == -1)
			rv = -1;
		free(name);
	}
	buf_clear(&b);
	if (rv == 0)
		cmd_report_stale(cfg, o->config_path, o->out_dir);
	free(dir);
	return rv;
}

/* tunnels nginx: server blocks to stdout or into a directory. */
int
cmd_nginx(int argc, char **argv)
{
	static const struct option	 longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "server", required_argument, NULL, CMD_OPT_SERVER },
		{ "http-port", required_argument, NULL, CMD_OPT_HTTP_PORT },
		{ "https-port", required_argument, NULL, CMD_OPT_HTTPS_PORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct nginx_options		 o;
	struct config			*cfg = NULL;
	struct buf			 out, warn;
	const char			*path = CONFIG_DEFAULT_PATH;
	ssize_t				 only = -1;
	int				 ch, rc = CMD_EXIT_USAGE;

	nginx_options_init(&o);
	o.version = TUNNELS_VERSION;
	buf_init(&out);
	buf_init(&warn);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			o.out_dir = optarg;
			break;
		case CMD_OPT_SERVER:
			o.server = optarg;
			break;
		case CMD_OPT_HTTP_PORT:
		case CMD_OPT_HTTPS_PORT:
			if (cmd_parse_port(optarg) == -1) {
				fprintf(stderr, "tunnels: invalid port \"%s\" "
				    "(1-65535)\n", optarg);
				goto usage;
			}
			if (ch == CMD_OPT_HTTP_PORT)
				o.http_port = cmd_parse_port(optarg);
			else
				o.https_port = cmd_parse_port(optarg);
			break;
		case 'h':
			cmd_help_print(CMD_NGINX_USAGE, CMD_NGINX_HELP);
			return CMD_EXIT_OK;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	o.config_path = path;
	rc = CMD_EXIT_NOTCONFIGURED;
	if ((cfg = cmd_load_config(path, 0)) == NULL)
		goto out;
	rc = CMD_EXIT_USAGE;
	if (o.server != NULL &&
	    (only = cmd_find_server(cfg, path, o.server)) == -1)
		goto out;
	if (o.out_dir != NULL) {
		rc = cmd_nginx_write(cfg, &o, only, &warn) == 0 ?
		    CMD_EXIT_OK : CMD_EXIT_FAIL;
		goto out;
	}
	nginx_render(cfg, &o, &out, &warn);
	rc = cmd_print_buf(&out);
	goto out;
usage:
	fprintf(stderr, "usage: tunnels %s\n", CMD_NGINX_USAGE);
out:
	cmd_print_warnings(&warn);
	buf_clear(&warn);
	buf_clear(&out);
	config_free(cfg);
	return rc;
}
