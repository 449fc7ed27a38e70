/*
 * tunnels: command line, subcommand dispatch, exit codes, and the daemon's
 * top level (signals, systemd notifications, control socket, reload).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>

#include "cmd_common.h"
#include "cmd_nginx.h"
#include "config.h"
#include "control.h"
#include "diag.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "netwatch.h"
#include "notify.h"
#include "resolve.h"
#include "supervisor.h"

/* How long `tunnels status` waits for the daemon. */
#define STATUS_TIMEOUT_MS	5000
/* How long `tunnels reload` waits for the daemon to reload. */
#define RELOAD_TIMEOUT_MS	30000
/* Longest LAST ERROR shown in the status table (the JSON has it all). */
#define TABLE_ERROR_MAX		512

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

struct command {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*usage;
	const char	*help;
};

static int	cmd_run(int, char **);
static int	cmd_check(int, char **);
static int	cmd_status(int, char **);
static int	cmd_reload(int, char **);
static int	cmd_help(int, char **);
static void	daemon_state_dir(const char *);

static const struct command commands[] = {
	{ "run", cmd_run, "run [-c FILE]",
	  "Run the daemon in the foreground (as systemd starts it).\n"
	  "Exit 0 on SIGTERM/SIGINT, 6 on a bad config, 1 on other start "
	  "failures.\nSIGHUP reloads the config; SIGUSR1 retries everything "
	  "now." },
	{ "check", cmd_check, "check [-c FILE] [--connect [SERVER]]",
	  "Validate the config offline. Every problem is printed as\n"
	  "FILE:LINE:COL: message. Exit 0 when valid, 6 when not.\n\n"
	  "With --connect, then diagnose every server (or only SERVER) live,\n"
	  "the way the daemon connects: name resolution, TCP to each address,\n"
	  "the SSH banner, the algorithms chosen, the host key, "
	  "authentication,\na trial forward of each tunnel's remote "
	  "(cancelled at once) and the\nexec the stale-port reclaim needs. "
	  "One line per step, starting with\n\u2713 or \u2717, and under "
	  "every \u2717 a line with the fix. Exit 0 when\nevery step passed, "
	  "1 otherwise, 6 when the config is invalid." },
	{ "status", cmd_status, "status [-c FILE] [--json]",
	  "Ask the running daemon for its status: a table, or JSON with "
	  "--json.\nExit 0 if every tunnel is up, 3 if some are not, 1 if "
	  "no daemon answers." },
	{ "reload", cmd_reload, "reload [-c FILE]",
	  "Ask the running daemon to reload its config, and wait until it\n"
	  "has: exit 0 when applied, 1 when the daemon refused the file (it\n"
	  "keeps running the previous config) or does not answer. Meant for\n"
	  "ExecReload=, which then really waits for the reload." },
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
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(fp, "  tunnels %s\n", commands[i].usage);
	fprintf(fp, "  tunnels --version\n\n"
	    "Config: %s unless -c FILE is given.\n", CONFIG_DEFAULT_PATH);
}

/* The command table entry for name, or NULL. */
static const struct command *
command_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
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
	printf("usage: tunnels %s\n\n%s\n", c->usage, c->help);
	return CMD_EXIT_OK;
}

/* Parse -c FILE (and --json when json != NULL); -1 on a usage error. */
static int
parse_common(int argc, char **argv, const char **path, int *json)
{
	static const struct option	longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int				ch;

	*path = CONFIG_DEFAULT_PATH;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*path = optarg;
			break;
		case 'j':
			if (json == NULL)
				goto bad;
			*json = 1;
			break;
		case 'h':
			cmd_help(2, (char *[]){ argv[0], argv[0], NULL });
			exit(CMD_EXIT_OK);
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "usage: tunnels %s\n", command_find(argv[0])->usage);
	return -1;
}

/* tunnels check [--connect [SERVER]]: validate, then diagnose live. */
static int
cmd_check(int argc, char **argv)
{
	static const struct option	longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "connect", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct config_errors	 errs;
	struct config		*cfg;
	const char		*path = CONFIG_DEFAULT_PATH, *server = NULL;
	ssize_t			 only = -1;
	int			 ch, live = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			live = 1;
			break;
		case 'h':
			cmd_help(2, (char *[]){ argv[0], argv[0], NULL });
			return CMD_EXIT_OK;
		default:
			goto usage;
		}
	}
	/* A SERVER only with --connect. */
	if (optind < argc && live)
		server = argv[optind++];
	if (optind != argc)
		goto usage;
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
	if (server != NULL &&
	    (only = cmd_find_server(cfg, path, server)) == -1)
		rc = CMD_EXIT_USAGE;
	else if (live) {
		printf("\n");
		fflush(stdout);
		rc = diag_run(cfg, only) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAIL;
	}
	config_free(cfg);
	return rc;
usage:
	fprintf(stderr, "usage: tunnels %s\n", command_find(argv[0])->usage);
	return CMD_EXIT_USAGE;
}

/* Human-readable byte count. */
static void
fmt_bytes(double v, char *out, size_t len)
{
	const char	*units = "BKMGTP";

	while (v >= 1024 && units[1] != '\0') {
		v /= 1024;
		units++;
	}
	if (*units == 'B')
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.1f%c", v, *units);
}

/* Human-readable duration. */
static void
fmt_secs(double s, char *out, size_t len)
{
	if (s < 120)
		snprintf(out, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, len, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(out, len, "%.0fh", s / 3600);
	else
		snprintf(out, len, "%.0fd", s / 86400);
}

/*
 * A JSON string member or "-", made safe for a terminal into buf (len
 * bytes): the document may carry anything a server sent, so no control
 * character or escape sequence reaches the screen and one cell stays on
 * one line, however long.
 */
static const char *
str_or_dash(const struct json *o, const char *key, char *buf, size_t len)
{
	const char	*s = json_get_str(o, key);

	if (s == NULL)
		return "-";
	return str_sanitize_buf(s, strlen(s), buf, len, STR_UTF8);
}

/* Print the status document as tables; returns the exit code. */
static int
print_status_table(const struct json *doc)
{
	const struct json	*servers = json_get(doc, "servers");
	const struct json	*tunnels = json_get(doc, "tunnels");
	const struct json	*o;
	const char		*st;
	char			 since[16], in[16], out[16], conns[48];
	char			 mem[16];
	char			 name[64], server[64], state[32], addr[160];
	char			 local[160], err[TABLE_ERROR_MAX];
	size_t			 i;
	int			 all_up = 1;

	printf("%-16s %-10s %-24s %-6s %-7s %s\n", "SERVER", "STATE",
	    "ADDRESS", "SINCE", "MEMORY", "LAST ERROR");
	for (i = 0; servers != NULL && i < servers->nkids; i++) {
		o = &servers->kids[i];
		fmt_secs(json_get_num(o, "since_s", 0), since, sizeof since);
		/* What libssh2 holds for the server (max_session_memory). */
		fmt_bytes(json_get_num(o, "memory_bytes", 0), mem, sizeof mem);
		printf("%-16s %-10s %-24s %-6s %-7s %s\n",
		    str_or_dash(o, "name", name, sizeof name),
		    str_or_dash(o, "state", state, sizeof state),
		    str_or_dash(o, "address", addr, sizeof addr), since, mem,
		    str_or_dash(o, "last_error", err, sizeof err));
	}
	printf("\n%-16s %-12s %-22s %-26s %-10s %-6s %-10s %-7s %-7s %s\n",
	    "TUNNEL", "SERVER", "REMOTE", "LOCAL", "STATE", "SINCE",
	    "CONNS", "IN", "OUT", "LAST ERROR");
	for (i = 0; tunnels != NULL && i < tunnels->nkids; i++) {
		o = &tunnels->kids[i];
		st = str_or_dash(o, "state", state, sizeof state);
		if (strcmp(st, "up") != 0)
			all_up = 0;
		fmt_secs(json_get_num(o, "since_s", 0), since, sizeof since);
		fmt_bytes(json_get_num(o, "bytes_in", 0), in, sizeof in);
		fmt_bytes(json_get_num(o, "bytes_out", 0), out, sizeof out);
		snprintf(conns, sizeof conns, "%.0f/%.0f",
		    json_get_num(o, "active_connections", 0),
		    json_get_num(o, "total_connections", 0));
		printf("%-16s %-12s %-22s %-26s %-10s %-6s %-10s %-7s %-7s "
		    "%s\n", str_or_dash(o, "name", name, sizeof name),
		    str_or_dash(o, "server", server, sizeof server),
		    str_or_dash(o, "remote", addr, sizeof addr),
		    str_or_dash(o, "local", local, sizeof local), st, since,
		    conns, in, out, str_or_dash(o, "last_error", err,
		    sizeof err));
	}
	if (json_get_str(doc, "reload_error") != NULL)
		printf("\nlast reload failed: %s\n",
		    str_or_dash(doc, "reload_error", err, sizeof err));
	return all_up ? CMD_EXIT_OK : CMD_EXIT_NOT_ALL_UP;
}

/* 1 when every tunnel in the document is up. */
static int
status_all_up(const struct json *doc)
{
	const struct json	*tunnels = json_get(doc, "tunnels");
	size_t			 i;
	const char		*st;

	for (i = 0; tunnels != NULL && i < tunnels->nkids; i++) {
		st = json_get_str(&tunnels->kids[i], "state");
		if (st == NULL || strcmp(st, "up") != 0)
			return 0;
	}
	return 1;
}

/*
 * Fetch and parse the daemon's status document; NULL after printing why.
 * raw (may be NULL) receives the text as the daemon sent it.
 */
static struct json *
status_fetch(const char *control, char **raw, long *peer)
{
	struct json	*doc;
	char		*text = NULL, *cause = NULL;

	if (control_query_peer(control, STATUS_TIMEOUT_MS, &text, peer,
	    &cause) == -1) {
		fprintf(stderr, "tunnels: %s\n", cause);
		free(cause);
		return NULL;
	}
	if ((doc = json_parse(text, &cause)) == NULL) {
		fprintf(stderr, "tunnels: bad answer from the daemon: %s\n",
		    cause);
		free(cause);
	}
	if (raw != NULL && doc != NULL)
		*raw = text;
	else
		free(text);
	return doc;
}

/* tunnels status: ask the daemon. */
static int
cmd_status(int argc, char **argv)
{
	struct json	*doc;
	const char	*path;
	char		*control, *raw = NULL, *cause;
	int		 json = 0, rc;

	if (parse_common(argc, argv, &path, &json) == -1)
		return CMD_EXIT_USAGE;
	if ((control = config_control_path(path, &cause)) == NULL) {
		fprintf(stderr, "tunnels: %s\n", cause);
		free(cause);
		return CMD_EXIT_NOTCONFIGURED;
	}
	doc = status_fetch(control, &raw, NULL);
	free(control);
	if (doc == NULL)
		return CMD_EXIT_FAIL;
	if (json) {
		fputs(raw, stdout);
		rc = status_all_up(doc) ? CMD_EXIT_OK : CMD_EXIT_NOT_ALL_UP;
	} else
		rc = print_status_table(doc);
	json_free(doc);
	free(raw);
	return rc;
}


/* tunnels reload: SIGHUP the daemon and wait until it has reloaded. */
static int
cmd_reload(int argc, char **argv)
{
	struct json	*doc;
	const char	*path, *err, *mainpid;
	char		*control, *cause, safe[4096];
	double		 before;
	long		 pid, peer = -1;
	int64_t		 deadline;
	int		 rc = CMD_EXIT_FAIL;

	if (parse_common(argc, argv, &path, NULL) == -1)
		return CMD_EXIT_USAGE;
	if ((control = config_control_path(path, &cause)) == NULL) {
		fprintf(stderr, "tunnels: %s\n", cause);
		free(cause);
		return CMD_EXIT_NOTCONFIGURED;
	}
	if ((doc = status_fetch(control, NULL, &peer)) == NULL)
		goto out;
	pid = (long)json_get_num(doc, "pid", 0);
	before = json_get_num(doc, "reloads", -1);
	json_free(doc);
	if (pid <= 1 || before < 0) {
		fprintf(stderr, "tunnels: the daemon did not say its pid\n");
		goto out;
	}
	/*
	 * The document is only what some process wrote on the socket; the
	 * kernel knows who listens on it. Signal a pid only if both agree.
	 */
	if (peer != pid) {
		fprintf(stderr, "tunnels: %s is served by pid %ld but names pid "
		    "%ld; not reloading\n", control, peer, pid);
		goto out;
	}
	/*
	 * Under systemd (ExecReload=) MAINPID names the daemon to reload:
	 * never signal another one that happens to answer on this socket.
	 */
	if ((mainpid = getenv("MAINPID")) != NULL && *mainpid != '\0' &&
	    strtol(mainpid, NULL, 10) != pid) {
		fprintf(stderr, "tunnels: %s is answered by pid %ld, not by "
		    "this service's main process %s; not reloading\n",
		    control, pid, mainpid);
		goto out;
	}
	if (kill((pid_t)pid, SIGHUP) == -1) {
		fprintf(stderr, "tunnels: cannot signal pid %ld: %s\n", pid,
		    strerror(errno));
		goto out;
	}
	/* The daemon counts reloads; wait for the count to move. */
	deadline = time_now_ms() + RELOAD_TIMEOUT_MS;
	for (;;) {
		if ((doc = status_fetch(control, NULL, NULL)) == NULL)
			goto out;
		if (json_get_num(doc, "reloads", -1) > before)
			break;
		json_free(doc);
		if (time_now_ms() > deadline) {
			fprintf(stderr, "tunnels: no reload within %ds\n",
			    RELOAD_TIMEOUT_MS / 1000);
			goto out;
		}
		poll(NULL, 0, 20);
	}
	if ((err = json_get_str(doc, "reload_error")) != NULL)
		/* The daemon's words may quote the file: print them safely. */
		fprintf(stderr, "tunnels: reload refused, the daemon keeps "
		    "the previous config: %s\n", str_sanitize_buf(err,
		    strlen(err), safe, sizeof safe, STR_UTF8));
	else {
		printf("reloaded %s\n", path);
		rc = CMD_EXIT_OK;
	}
	json_free(doc);
out:
	free(control);
	return rc;
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
	char			*why = NULL, *line, *control_err = NULL;
	struct control		*c;
	size_t			 i;

	notify_send(NOTIFY_RELOADING, "reloading");
	log_notice(NULL, NULL, "reloading %s", d->path);
	memset(&errs, 0, sizeof errs);
	nc = config_load(d->path, &errs);
	if (nc == NULL) {
		for (i = 0; i < errs.n; i++) {
			line = config_error_text(&errs, i);
			log_err(NULL, NULL, "%s", line);
			if (i == 0)
				why = xasprintf("%s%s", line, errs.n > 1 ?
				    " (and more)" : "");
			free(line);
		}
		if (why == NULL)
			why = xstrdup("invalid config");
		log_err(NULL, NULL, "reload refused, still running the "
		    "previous config: %s", why);
		supervisor_reload_failed(d->sv, why);
		free(why);
	} else {
		/* Sessions read it as they are created or kept: make it now. */
		if (strcmp(nc->state_dir,
		    supervisor_config(d->sv)->state_dir) != 0)
			daemon_state_dir(nc->state_dir);
		if (strcmp(nc->control,
		    supervisor_config(d->sv)->control) != 0) {
			c = control_new(d->loop, nc->control, daemon_render, d,
			    &control_err);
			if (c == NULL) {
				log_err(NULL, NULL, "keeping the control "
				    "socket: %s", control_err);
				free(control_err);
			} else {
				control_free(d->control);
				d->control = c;
			}
		}
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

/* tunnels run: the daemon. */
static int
cmd_run(int argc, char **argv)
{
	struct daemon		 d;
	struct config		*cfg;
	struct sigaction	 sa;
	char			*cause = NULL;
	int			 rc = CMD_EXIT_FAIL;
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	size_t			 i;

	memset(&d, 0, sizeof d);
	if (parse_common(argc, argv, &d.path, NULL) == -1)
		return CMD_EXIT_USAGE;
	log_init("tunnels", LOG_PRI_INFO);
	if ((cfg = cmd_load_config(d.path, 1)) == NULL)
		return CMD_EXIT_NOTCONFIGURED;
	/* Local sockets are written with MSG_NOSIGNAL, but be safe. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (libssh2_init(0) != 0) {
		log_err(NULL, NULL, "libssh2_init failed");
		config_free(cfg);
		return CMD_EXIT_FAIL;
	}
	/* A system library older than the one built against (a downgrade). */
	if (libssh2_version(LIBSSH2_VERSION_NUM) == NULL) {
		log_err(NULL, NULL, "libssh2 %s is older than %s, which tunnels "
		    "was built for", libssh2_version(0), LIBSSH2_VERSION);
		config_free(cfg);
		return CMD_EXIT_FAIL;
	}
	daemon_state_dir(cfg->state_dir);
	if ((d.loop = loop_new()) == NULL ||
	    (d.resolver = resolver_new(d.loop)) == NULL) {
		log_err(NULL, NULL, "cannot set up the event loop: %s",
		    strerror(errno));
		config_free(cfg);
		goto out;
	}
	d.sv = supervisor_new(d.loop, d.resolver, cfg);
	d.control = control_new(d.loop, cfg->control, daemon_render, &d,
	    &cause);
	if (d.control == NULL) {
		log_err(NULL, NULL, "%s", cause);
		free(cause);
		goto out;
	}
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (loop_signal(d.loop, sigs[i], daemon_signal, &d) == -1) {
			log_err(NULL, NULL, "signalfd: %s", strerror(errno));
			goto out;
		}
	/* Without netlink (a sandbox may forbid it) we only lose speed. */
	d.netwatch = netwatch_new(d.loop, daemon_network_changed, &d);
	if (d.netwatch == NULL)
		log_warn(NULL, NULL, "no network change notifications "
		    "(netlink: %s); relying on backoff", strerror(errno));
	d.watchdog_ms = notify_watchdog_interval_ms();
	loop_timer_init(&d.watchdog, daemon_watchdog, &d);
	if (d.watchdog_ms > 0)
		loop_timer_in(d.loop, &d.watchdog, d.watchdog_ms);
	supervisor_on_change(d.sv, daemon_changed, &d);
	log_notice(NULL, NULL, "tunnels %s starting: %s, %zu server%s, %zu "
	    "tunnel%s", TUNNELS_VERSION, d.path, cfg->n_servers,
	    cfg->n_servers == 1 ? "" : "s", cfg->n_tunnels,
	    cfg->n_tunnels == 1 ? "" : "s");
	supervisor_start(d.sv);
	if (loop_run(d.loop) == 0)
		rc = CMD_EXIT_OK;
	log_notice(NULL, NULL, "stopped");
out:
	if (d.loop != NULL)
		loop_timer_stop(d.loop, &d.watchdog);
	supervisor_free(d.sv);
	netwatch_free(d.netwatch);
	control_free(d.control);
	resolver_free(d.resolver);
	loop_free(d.loop);
	free(d.last_status);
	libssh2_exit();
	return rc;
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
