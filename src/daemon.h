/*
 * `tunnels run`: the daemon's top level. It owns the event loop, the
 * resolver, the supervisor, the control socket and the network watch,
 * and turns signals into stop, reload and retry, and state changes into
 * systemd notifications.
 */
#ifndef TUNNELS_DAEMON_H
#define TUNNELS_DAEMON_H

#define CMD_RUN_USAGE	"run [-c FILE]"

#define CMD_RUN_HELP \
	"Run the daemon in the foreground (as systemd starts it).\n" \
	"Exit 0 on SIGTERM/SIGINT, 6 on a bad config, 1 on other start " \
	"failures.\nSIGHUP reloads the config; SIGUSR1 retries everything " \
	"now."

int	cmd_run(int argc, char **argv);

#endif
