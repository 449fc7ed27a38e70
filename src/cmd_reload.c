/*
 * `tunnels reload`: find the daemon behind the control socket, SIGHUP it
 * and wait until its reload counter moves, then say whether it took the
 * file. The pid the document names is signalled only when the kernel
 * (SO_PEERCRED) and, under systemd, MAINPID agree on it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "cmd_common.h"
#include "cmd_reload.h"
#include "cmd_status.h"
#include "json.h"
#include "util.h"

/* How long `tunnels reload` waits for the daemon to reload. */
#define RELOAD_TIMEOUT_MS	30000
/* How long between two questions to a daemon that has not reloaded yet. */
#define RELOAD_ASK_MS		20

/*
 * The pid of the daemon on control and its reload count, or -1 after
 * printing why it is not one to signal.
 */
static long
reload_target(const char *control, double *reloads)
{
	struct json	*doc;
	const char	*mainpid;
	long		 pid, peer = -1;

	if ((doc = cmd_status_fetch(control, NULL, &peer)) == NULL)
		return -1;
	pid = (long)json_get_num(doc, "pid", 0);
	*reloads = json_get_num(doc, "reloads", -1);
	json_free(doc);
	if (pid <= 1 || *reloads < 0) {
		fprintf(stderr, "tunnels: the daemon did not say its pid\n");
		return -1;
	}
	/*
	 * The document is only what some process wrote on the socket; the
	 * kernel knows who listens on it. Signal a pid only if both agree.
	 */
	if (peer != pid) {
		fprintf(stderr, "tunnels: %s is served by pid %ld but names pid "
		    "%ld; not reloading\n", control, peer, pid);
		return -1;
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
		return -1;
	}
	return pid;
}

/*
 * SIGHUP pid. *pidfd receives a pidfd for the process, or -1 where the
 * kernel or a seccomp filter has none (then plain kill(2)). Returns 0, or
 * -1 after printing why.
 */
static int
reload_signal(long pid, int *pidfd)
{
	/* A pidfd names this process, never a later one with its pid. */
	*pidfd = pidfd_open((pid_t)pid, 0);
	if (*pidfd != -1 && pidfd_send_signal(*pidfd, SIGHUP, NULL, 0) == 0)
		return 0;
	if (kill((pid_t)pid, SIGHUP) == 0)
		return 0;
	fprintf(stderr, "tunnels: cannot signal pid %ld: %s\n", pid,
	    strerror(errno));
	return -1;
}

/*
 * Wait up to ms for the daemon to exit; 1 when it has. The daemon reloads
 * within the loop turn that reads the signal, so the next answer almost
 * always counts the reload: this only paces the questions, and notices a
 * daemon that died. Without a pidfd (fd -1, which poll ignores) it is the
 * pace alone.
 */
static int
reload_daemon_exited(int pidfd, int ms)
{
	struct pollfd	pfd = { .fd = pidfd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN) != 0;
}

/*
 * Ask until the reload count passes before; the document with it, or
 * NULL after printing why not.
 */
static struct json *
reload_wait(const char *control, long pid, int pidfd, double before)
{
	struct json	*doc;
	int64_t		 now, deadline;

	deadline = time_now_ms() + RELOAD_TIMEOUT_MS;
	for (;;) {
		if ((doc = cmd_status_fetch(control, NULL, NULL)) == NULL)
			return NULL;
		if (json_get_num(doc, "reloads", -1) > before)
			return doc;
		json_free(doc);
		if ((now = time_now_ms()) > deadline) {
			fprintf(stderr, "tunnels: no reload within %ds\n",
			    RELOAD_TIMEOUT_MS / 1000);
			return NULL;
		}
		if (reload_daemon_exited(pidfd,
		    (int)MIN(RELOAD_ASK_MS, deadline - now + 1))) {
			fprintf(stderr, "tunnels: pid %ld exited before "
			    "reloading\n", pid);
			return NULL;
		}
	}
}

/* tunnels reload: SIGHUP the daemon and wait until it has reloaded. */
int
cmd_reload(int argc, char **argv)
{
	struct json	*doc;
	struct cmd_opts	 o;
	const char	*err;
	char		*control, safe[4096];
	double		 before;
	long		 pid;
	int		 pidfd = -1, rc;

	if ((rc = cmd_parse_common(argc, argv, CMD_RELOAD_USAGE,
	    CMD_RELOAD_HELP, 0, &o)) != -1)
		return rc;
	if ((control = cmd_control_path(o.path)) == NULL)
		return CMD_EXIT_NOTCONFIGURED;
	rc = CMD_EXIT_FAIL;
	if ((pid = reload_target(control, &before)) == -1 ||
	    reload_signal(pid, &pidfd) == -1 ||
	    (doc = reload_wait(control, pid, pidfd, before)) == NULL)
		goto out;
	if ((err = json_get_str(doc, "reload_error")) != NULL)
		/* The daemon's words may quote the file: print them safely. */
		fprintf(stderr, "tunnels: reload refused, the daemon keeps "
		    "the previous config: %s\n", str_sanitize_buf(err,
		    strlen(err), safe, sizeof safe, STR_UTF8));
	else {
		printf("reloaded %s\n", o.path);
		rc = CMD_EXIT_OK;
	}
	json_free(doc);
out:
	if (pidfd != -1)
		close(pidfd);
	free(control);
	return rc;
}
