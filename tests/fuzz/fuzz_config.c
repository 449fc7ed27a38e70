/*
 * libFuzzer target: the configuration loader, from the file (read as
 * `tunnels check` and the daemon read it) to the struct config, the
 * error list and the control socket lookup of status and reload. The
 * filesystem checks stay off: a fuzzed path would name real files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Compare every server and tunnel with itself: the reload's diff. */
static void
fuzz_config_compare(const struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->n_servers; i++)
		if (!config_server_equal(&cfg->servers[i], &cfg->servers[i]) ||
		    config_server_find(cfg, cfg->servers[i].name) == NULL)
			abort();
	for (i = 0; i < cfg->n_tunnels; i++)
		if (!config_tunnel_equal(&cfg->tunnels[i], &cfg->tunnels[i]) ||
		    !config_nginx_equal(cfg->tunnels[i].nginx,
		    cfg->tunnels[i].nginx) ||
		    config_tunnel_find(cfg, cfg->tunnels[i].name) == NULL)
			abort();
}

/* One input: the text of a config file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE		*devnull;
	struct config_errors	 errs;
	struct config		*cfg;
	const char		*path;
	char			*control, *cause;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	path = fuzz_file(data, size);
	memset(&errs, 0, sizeof errs);
	cfg = config_load_ex(path, 0, &errs);
	/* Valid exactly when no error was reported. */
	if ((cfg == NULL) != (errs.n > 0))
		abort();
	config_errors_print(&errs, devnull);
	config_warnings_print(&errs, devnull);
	config_errors_clear(&errs);
	if (cfg != NULL)
		fuzz_config_compare(cfg);
	config_free(cfg);
	control = config_control_path(path, &cause);
	if ((control == NULL) == (cause == NULL))
		abort();
	free(control);
	free(cause);
	return 0;
}
