/*
 * `tunnels check`: validate the config offline, and with --connect
 * diagnose every server live (diag.c).
 */
#ifndef TUNNELS_CMD_CHECK_H
#define TUNNELS_CMD_CHECK_H

#define CMD_CHECK_USAGE	"check [-c FILE] [--connect [SERVER]]"

#define CMD_CHECK_HELP \
	"Validate the config offline. Every problem is printed as\n" \
	"FILE:LINE:COL: message. Exit 0 when valid, 6 when not.\n\n" \
	"With --connect, then diagnose every server (or only SERVER) live,\n" \
	"the way the daemon connects: name resolution, TCP to each address,\n" \
	"the SSH banner, the algorithms chosen, the host key, " \
	"authentication,\na trial forward of each tunnel's remote " \
	"(cancelled at once) and the\nexec the stale-port reclaim needs. " \
	"One line per step, starting with\n\u2713 or \u2717, and under " \
	"every \u2717 a line with the fix. Exit 0 when\nevery step passed, " \
	"1 otherwise, 6 when the config is invalid."

int	cmd_check(int argc, char **argv);

#endif
