/*
 * What the subcommands share: loading the config with every problem
 * printed, finding a server by name, printing output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_common.h"
#include "config.h"

/* Load the config, printing every problem; NULL when invalid. */
struct config *
cmd_load_config(const char *path, int check_files)
{
	struct config_errors	 errs;
	struct config		*cfg;

	memset(&errs, 0, sizeof errs);
	cfg = config_load_ex(path, check_files, &errs);
	if (cfg == NULL)
		config_errors_print(&errs, stderr);
	config_errors_clear(&errs);
	return cfg;
}

/* The index of server name, or -1 after printing the known names. */
ssize_t
cmd_find_server(const struct config *cfg, const char *path, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->n_servers; i++)
		if (strcmp(cfg->servers[i].name, name) == 0)
			return (ssize_t)i;
	fprintf(stderr, "tunnels: no server \"%s\" in %s (servers:", name,
	    path);
	for (i = 0; i < cfg->n_servers; i++)
		fprintf(stderr, " %s", cfg->servers[i].name);
	fprintf(stderr, "%s)\n", cfg->n_servers == 0 ? " none" : "");
	return -1;
}

/* Print each line of the warnings buffer to stderr. */
void
cmd_print_warnings(struct buf *warn)
{
	char	*s, *nl;

	if (warn->len == 0)
		return;
	for (s = buf_cstr(warn); *s != '\0'; s = nl + 1) {
		if ((nl = strchr(s, '\n')) == NULL)
			nl = s + strlen(s);
		fprintf(stderr, "tunnels: warning: %.*s\n", (int)(nl - s), s);
		if (*nl == '\0')
			break;
	}
}

/* Print the text to stdout; the exit code (a full disk is a failure). */
int
cmd_print_buf(struct buf *b)
{
	if (fwrite(buf_cstr(b), 1, b->len, stdout) != b->len ||
	    fflush(stdout) == EOF) {
		fprintf(stderr, "tunnels: writing to stdout: %s\n",
		    strerror(errno));
		return CMD_EXIT_FAIL;
	}
	return CMD_EXIT_OK;
}
