/*
 * What the subcommands share: the common options, loading the config with
 * every problem printed, finding a server by name, printing output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_common.h"
#include "config.h"
#include "util.h"

/* The text `tunnels help COMMAND` prints. */
void
cmd_help_print(const char *usage, const char *help)
{
	printf("usage: tunnels %s\n\n%s\n", usage, help);
}

/* Print the usage line; CMD_EXIT_USAGE. */
int
cmd_usage_error(const char *usage)
{
	fprintf(stderr, "usage: tunnels %s\n", usage);
	return CMD_EXIT_USAGE;
}

/* -c FILE, --help and the options allow names; see cmd_common.h. */
int
cmd_parse_common(int argc, char **argv, const char *usage, const char *help,
    int allow, struct cmd_opts *o)
{
	struct option	longopts[5] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
	};
	size_t		n = 2;
	int		ch;

	/* Only what the command takes: getopt then rejects the rest. */
	if (allow & CMD_OPT_JSON)
		longopts[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	if (allow & CMD_OPT_CONNECT)
		longopts[n++] = (struct option){ "connect", no_argument, NULL,
		    'C' };
	memset(o, 0, sizeof *o);
	o->path = CONFIG_DEFAULT_PATH;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->path = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'C':
			o->connect = 1;
			break;
		case 'h':
			cmd_help_print(usage, help);
			return CMD_EXIT_OK;
		default:
			return cmd_usage_error(usage);
		}
	}
	if (optind < argc && (allow & CMD_OPT_OPERAND) != 0)
		o->operand = argv[optind++];
	return optind == argc ? -1 : cmd_usage_error(usage);
}

/* The control socket path of the config at path; NULL after printing why. */
char *
cmd_control_path(const char *path)
{
	char	*control, *cause;

	if ((control = config_control_path(path, &cause)) == NULL) {
		fprintf(stderr, "tunnels: %s\n", cause);
		free(cause);
	}
	return control;
}

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
	ssize_t	found;
	size_t	i;

	if ((found = config_server_index(cfg, name)) != -1)
		return found;
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
