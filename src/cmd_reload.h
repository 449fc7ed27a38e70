/*
 * `tunnels reload`: signal the daemon to reload its config and wait until
 * it has (ExecReload=).
 */
#ifndef TUNNELS_CMD_RELOAD_H
#define TUNNELS_CMD_RELOAD_H

#define CMD_RELOAD_USAGE	"reload [-c FILE]"

#define CMD_RELOAD_HELP \
	"Ask the running daemon to reload its config, and wait until it\n" \
	"has: exit 0 when applied, 1 when the daemon refused the file (it\n" \
	"keeps running the previous config) or does not answer. Meant for\n" \
	"ExecReload=, which then really waits for the reload."

int	cmd_reload(int argc, char **argv);

#endif
