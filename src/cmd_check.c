/*
 * `tunnels check`: the config validated as the daemon would load it, its
 * warnings too, and with --connect a live diagnosis of the servers.
 */
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "cmd_check.h"
#include "cmd_common.h"
#include "config.h"
#include "diag.h"

/* tunnels check [--connect [SERVER]]: validate, then diagnose live. */
int
cmd_check(int argc, char **argv)
{
	struct config_errors	 errs;
	struct config		*cfg;
	struct cmd_opts		 o;
	const char		*path;
	ssize_t			 only = -1;
	int			 rc;

	if ((rc = cmd_parse_common(argc, argv, CMD_CHECK_USAGE,
	    CMD_CHECK_HELP, CMD_OPT_CONNECT | CMD_OPT_OPERAND, &o)) != -1)
		return rc;
	/* A SERVER only with --connect. */
	if (o.operand != NULL && !o.connect)
		return cmd_usage_error(CMD_CHECK_USAGE);
	path = o.path;
	/* As cmd_load_config, and the warnings too (they keep it valid). */
	memset(&errs, 0, sizeof errs);
	cfg = config_load_ex(path, 1, &errs);
	config_errors_print(&errs, stderr);
	config_warnings_print(&errs, stderr);
	config_errors_clear(&errs);
	if (cfg == NULL)
		return CMD_EXIT_NOTCONFIGURED;
	printf("%s: valid: %zu server%s, %zu tunnel%s\n", path,
	    cfg->n_servers, cfg->n_servers == 1 ? "" : "s", cfg->n_tunnels,
	    cfg->n_tunnels == 1 ? "" : "s");
	rc = CMD_EXIT_OK;
	if (o.operand != NULL &&
	    (only = cmd_find_server(cfg, path, o.operand)) == -1)
		rc = CMD_EXIT_USAGE;
	else if (o.connect) {
		printf("\n");
		fflush(stdout);
		rc = diag_run(cfg, only) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAIL;
	}
	config_free(cfg);
	return rc;
}
