/*
 * tunnels: the command line. Each subcommand lives in its own file and
 * header (daemon.c is `run`); this file only finds and runs one.
 */
#include <stdio.h>
#include <string.h>

#include <libssh2.h>

#include "cmd_check.h"
#include "cmd_common.h"
#include "cmd_nginx.h"
#include "cmd_reload.h"
#include "cmd_setup.h"
#include "cmd_status.h"
#include "config.h"
#include "daemon.h"
#include "util.h"

struct command {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*usage;
	const char	*help;
};

static int	cmd_help(int, char **);

static const struct command commands[] = {
	{ "run", cmd_run, CMD_RUN_USAGE, CMD_RUN_HELP },
	{ "check", cmd_check, CMD_CHECK_USAGE, CMD_CHECK_HELP },
	{ "status", cmd_status, CMD_STATUS_USAGE, CMD_STATUS_HELP },
	{ "reload", cmd_reload, CMD_RELOAD_USAGE, CMD_RELOAD_HELP },
	{ "nginx", cmd_nginx, CMD_NGINX_USAGE, CMD_NGINX_HELP },
	{ "server-setup", cmd_server_setup, CMD_SERVER_SETUP_USAGE,
	  CMD_SERVER_SETUP_HELP },
	{ "help", cmd_help, "help [COMMAND]", "Show help for a command." },
};

/* Print the general usage. */
static void
usage(FILE *fp)
{
	size_t	i;

	fprintf(fp, "usage: tunnels COMMAND [OPTIONS]\n\n"
	    "SSH reverse tunnels kept alive with libssh2, for systemd and "
	    "nginx.\n\ncommands:\n");
	for (i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(fp, "  tunnels %s\n", commands[i].usage);
	fprintf(fp, "  tunnels --version\n\n"
	    "Config: %s unless -c FILE is given.\n", CONFIG_DEFAULT_PATH);
}

/* The command table entry for name, or NULL. */
static const struct command *
command_find(const char *name)
{
	size_t	i;

	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* tunnels help [CMD] */
static int
cmd_help(int argc, char **argv)
{
	const struct command	*c;

	if (argc < 2) {
		usage(stdout);
		return CMD_EXIT_OK;
	}
	if ((c = command_find(argv[1])) == NULL) {
		fprintf(stderr, "tunnels: unknown command \"%s\"\n", argv[1]);
		return CMD_EXIT_USAGE;
	}
	cmd_help_print(c->usage, c->help);
	return CMD_EXIT_OK;
}

/* Entry point: dispatch to a subcommand. */
int
main(int argc, char **argv)
{
	const struct command	*c;

	if (argc < 2) {
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		/* Which libssh2 runs matters: see README "libssh2". */
		printf("tunnels %s (libssh2 %s, %s)\n", TUNNELS_VERSION,
		    libssh2_version(0), strcmp(TUNNELS_LIBSSH2, "static") == 0 ?
		    "built in" : "system library");
		return CMD_EXIT_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CMD_EXIT_OK;
	}
	if ((c = command_find(argv[1])) == NULL) {
		fprintf(stderr, "tunnels: unknown command \"%s\"\n\n", argv[1]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
