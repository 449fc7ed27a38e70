/*
 * The daemon's top level: start the loop, the resolver, the supervisor,
 * the control socket and the network watch; turn signals into stop,
 * reload and retry, state changes into systemd notifications; keep the
 * watchdog fed.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>

#include "cmd_common.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "netwatch.h"
#include "notify.h"
#include "resolve.h"
#include "supervisor.h"
#include "util.h"

/* Free heap kept for reuse rather than returned to the kernel. */
#define DAEMON_TRIM_KEEP	(1024 * 1024)

/* The running daemon's top-level objects. */
struct daemon {
	const char		*path;
	struct loop		*loop;
	struct resolver		*resolver;
	struct supervisor	*sv;
	struct control		*control;
	struct netwatch		*netwatch;
	struct loop_timer	 watchdog;
	int64_t			 watchdog_ms;
	int			 ready;
	char			*last_status;
};

/* Create the state directory; warn and carry on in memory on failure. */
static void
daemon_state_dir(const char *dir)
{
	struct stat	st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warn(NULL, NULL, "state_dir %s: %s; keeping state in memory "
		    "only", dir, strerror(errno));
		return;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    access(dir, W_OK) == -1)
		log_warn(NULL, NULL, "state_dir %s is not a writable directory;"
		    " keeping state in memory only", dir);
}

/* Render the status document for a control client. */
static void
daemon_render(void *arg, struct buf *out)
{
	struct daemon	*d = arg;

	supervisor_status_json(d->sv, out);
}

/* State changed: update STATUS=, and send READY=1 once settled. */
static void
daemon_changed(void *arg)
{
	struct daemon	*d = arg;
	char		*line = supervisor_status_line(d->sv);

	if (!d->ready && supervisor_settled(d->sv)) {
		d->ready = 1;
		notify_send(NOTIFY_READY, line);
		log_info(NULL, NULL, "ready: %s", line);
	} else if (d->last_status == NULL || strcmp(line, d->last_status) != 0)
		notify_send(NOTIFY_STATUS, line);
	free(d->last_status);
	d->last_status = line;
}

/* The new file is invalid: log every problem, keep the running config. */
static void
daemon_reload_refused(struct daemon *d, const struct config_errors *errs)
{
	char	*why = NULL, *line;
	size_t	 i;

	for (i = 0; i < errs->n; i++) {
		line = config_error_text(errs, i);
		log_err(NULL, NULL, "%s", line);
		if (i == 0)
			why = xasprintf("%s%s", line, errs->n > 1 ?
			    " (and more)" : "");
		free(line);
	}
	if (why == NULL)
		why = xstrdup("invalid config");
	log_err(NULL, NULL, "reload refused, still running the previous "
	    "config: %s", why);
	supervisor_reload_failed(d->sv, why);
	free(why);
}

/* Listen on a new control socket path; keep the old one on failure. */
static void
daemon_control_move(struct daemon *d, const char *path)
{
	struct control	*c;
	char		*cause = NULL;

	if ((c = control_new(d->loop, path, daemon_render, d,
	    &cause)) == NULL) {
		log_err(NULL, NULL, "keeping the control socket: %s", cause);
		free(cause);
		return;
	}
	control_free(d->control);
	d->control = c;
}

/*
 * SIGHUP: reload; an invalid file keeps the running config. Runs as posted
 * work (loop_signal), after the turn's fd callbacks: the sessions,
 * bridges and control socket it frees are referenced by nothing left in
 * the loop.
 */
static void
daemon_reload(struct daemon *d)
{
	struct config_errors	 errs;
	struct config		*nc;
	const struct config	*oc = supervisor_config(d->sv);

	notify_send(NOTIFY_RELOADING, "reloading");
	log_notice(NULL, NULL, "reloading %s", d->path);
	memset(&errs, 0, sizeof errs);
	if ((nc = config_load(d->path, &errs)) == NULL)
		daemon_reload_refused(d, &errs);
	else {
		/* Sessions read it as they are created or kept: make it now. */
		if (strcmp(nc->state_dir, oc->state_dir) != 0)
			daemon_state_dir(nc->state_dir);
		if (strcmp(nc->control, oc->control) != 0)
			daemon_control_move(d, nc->control);
		supervisor_reload(d->sv, nc);
	}
	config_errors_clear(&errs);
	free(d->last_status);
	d->last_status = supervisor_status_line(d->sv);
	notify_send(NOTIFY_READY, d->last_status);
}

/* Signal handler (via signalfd, so any code is safe here). */
static void
daemon_signal(void *arg, int signo)
{
	struct daemon	*d = arg;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		log_notice(NULL, NULL, "%s: stopping",
		    signo == SIGTERM ? "SIGTERM" : "SIGINT");
		notify_send(NOTIFY_STOPPING, "stopping");
		loop_stop(d->loop);
		break;
	case SIGHUP:
		daemon_reload(d);
		break;
	case SIGUSR1:
		log_notice(NULL, NULL, "SIGUSR1: retrying everything now");
		supervisor_retry_now(d->sv);
		break;
	}
}

/* The kernel reported a network change (debounced). */
static void
daemon_network_changed(void *arg)
{
	struct daemon	*d = arg;

	log_info(NULL, NULL, "network changed: retrying servers in backoff, "
	    "probing the others");
	supervisor_network_changed(d->sv);
}

/* Watchdog tick: the loop is alive. */
static void
daemon_watchdog(void *arg)
{
	struct daemon	*d = arg;

	notify_send(NOTIFY_WATCHDOG, NULL);
	loop_timer_in(d->loop, &d->watchdog, d->watchdog_ms);
}

/*
 * libssh2 initialised, and no older than the one built against (a
 * downgraded system library); 0, or -1 after logging why.
 */
static int
daemon_libssh2_init(void)
{
	if (libssh2_init(0) != 0) {
		log_err(NULL, NULL, "libssh2_init failed");
		return -1;
	}
	if (libssh2_version(LIBSSH2_VERSION_NUM) == NULL) {
		log_err(NULL, NULL, "libssh2 %s is older than %s, which tunnels "
		    "was built for", libssh2_version(0), LIBSSH2_VERSION);
		return -1;
	}
	return 0;
}

/* The signals, the network watch and the watchdog; 0 or -1 (logged). */
static int
daemon_watch(struct daemon *d)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	size_t			 i;

	for (i = 0; i < ARRAY_LEN(sigs); i++)
		if (loop_signal(d->loop, sigs[i], daemon_signal, d) == -1) {
			log_err(NULL, NULL, "signalfd: %s", strerror(errno));
			return -1;
		}
	/* Without netlink (a sandbox may forbid it) we only lose speed. */
	d->netwatch = netwatch_new(d->loop, daemon_network_changed, d);
	if (d->netwatch == NULL)
		log_warn(NULL, NULL, "no network change notifications "
		    "(netlink: %s); relying on backoff", strerror(errno));
	d->watchdog_ms = notify_watchdog_interval_ms();
	loop_timer_init(&d->watchdog, daemon_watchdog, d);
	if (d->watchdog_ms > 0)
		loop_timer_in(d->loop, &d->watchdog, d->watchdog_ms);
	return 0;
}

/*
 * Build the daemon around cfg (which it then owns); 0, or -1 after
 * logging why. daemon_free undoes what was done either way.
 */
static int
daemon_start(struct daemon *d, struct config *cfg)
{
	char	*cause = NULL;

	daemon_state_dir(cfg->state_dir);
	if ((d->loop = loop_new()) == NULL ||
	    (d->resolver = resolver_new(d->loop)) == NULL) {
		log_err(NULL, NULL, "cannot set up the event loop: %s",
		    strerror(errno));
		config_free(cfg);
		return -1;
	}
	d->sv = supervisor_new(d->loop, d->resolver, cfg);
	d->control = control_new(d->loop, cfg->control, daemon_render, d,
	    &cause);
	if (d->control == NULL) {
		log_err(NULL, NULL, "%s", cause);
		free(cause);
		return -1;
	}
	if (daemon_watch(d) == -1)
		return -1;
	supervisor_on_change(d->sv, daemon_changed, d);
	log_notice(NULL, NULL, "tunnels %s starting: %s, %zu server%s, %zu "
	    "tunnel%s", TUNNELS_VERSION, d->path, cfg->n_servers,
	    cfg->n_servers == 1 ? "" : "s", cfg->n_tunnels,
	    cfg->n_tunnels == 1 ? "" : "s");
	supervisor_start(d->sv);
	return 0;
}

/* Free what daemon_start made. */
static void
daemon_free(struct daemon *d)
{
	if (d->loop != NULL)
		loop_timer_stop(d->loop, &d->watchdog);
	supervisor_free(d->sv);
	netwatch_free(d->netwatch);
	control_free(d->control);
	resolver_free(d->resolver);
	loop_free(d->loop);
	free(d->last_status);
}

/* tunnels run: the daemon. */
int
cmd_run(int argc, char **argv)
{
	struct daemon		 d;
	struct config		*cfg;
	struct cmd_opts		 o;
	struct sigaction	 sa;
	int			 rc;

	memset(&d, 0, sizeof d);
	if ((rc = cmd_parse_common(argc, argv, CMD_RUN_USAGE, CMD_RUN_HELP, 0,
	    &o)) != -1)
		return rc;
	d.path = o.path;
	log_init("tunnels", LOG_PRI_INFO);
	if ((cfg = cmd_load_config(d.path, 1)) == NULL)
		return CMD_EXIT_NOTCONFIGURED;
	/*
	 * Keep freed heap up to DAEMON_TRIM_KEEP at the top instead of giving
	 * it back at once: each request allocates and frees its connection's
	 * 64 KiB buffers, and glibc's default (trim past 128 KiB) turned
	 * that into a brk() pair and fresh page faults per request (keep-alive
	 * requests halved; make bench BENCH=http).
	 */
	mallopt(M_TRIM_THRESHOLD, DAEMON_TRIM_KEEP);
	/* Local sockets are written with MSG_NOSIGNAL, but be safe. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (daemon_libssh2_init() == -1) {
		config_free(cfg);
		return CMD_EXIT_FAIL;
	}
	rc = CMD_EXIT_FAIL;
	if (daemon_start(&d, cfg) == 0) {
		if (loop_run(d.loop) == 0)
			rc = CMD_EXIT_OK;
		log_notice(NULL, NULL, "stopped");
	}
	daemon_free(&d);
	libssh2_exit();
	return rc;
}
