/*
 * `tunnels status`: the running daemon's status document from the
 * control socket, as tables or as the JSON itself.
 */
#ifndef TUNNELS_CMD_STATUS_H
#define TUNNELS_CMD_STATUS_H

#define CMD_STATUS_USAGE	"status [-c FILE] [--json]"

#define CMD_STATUS_HELP \
	"Ask the running daemon for its status: a table, or JSON with " \
	"--json.\nExit 0 if every tunnel is up, 3 if some are not, 1 if " \
	"no daemon answers."

struct json;

int		 cmd_status(int argc, char **argv);
/*
 * Fetch and parse the status document from the control socket; NULL
 * after printing why. raw (may be NULL) receives the text as the daemon
 * sent it, peer (may be NULL) the pid of the process that listens.
 */
struct json	*cmd_status_fetch(const char *control, char **raw, long *peer);

#endif
