/*
 * Stale-port reclaim over exec channels.
 *
 * Learning: the shell sshd starts for an exec request is a child of the
 * session's own "sshd: user@notty" process, which holds the session's
 * forwards, so $PPID is the process to remember, and field 22 of its
 * /proc stat (start time in clock ticks) tells it apart from a later
 * process that reuses the PID. sshd's processes are not dumpable, so ss -p
 * or fuser cannot find the holder of a port; this is the only reliable way.
 *
 * Ending: the kill command checks the name and the start time before
 * signalling, so it only ever ends a session this daemon created; the
 * account can only signal its own processes anyway.
 *
 * The exec channel follows the session's send-slot rules like everything
 * else: each phase makes one libssh2 call, and a blocked call is repeated
 * first (the phase is the record of the pending call).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "reclaim.h"
#include "ssherr.h"
#include "util.h"

#define RECLAIM_LEARN_CMD	"echo $PPID $(cut -d' ' -f22 /proc/$PPID/stat)"
/* Previous sessions remembered (several links may have died in a row). */
#define RECLAIM_MAX_PREV	4
#define RECLAIM_OUT_MAX		256
/* An exec that has not finished by then will not (e.g. a hanging
 * ForceCommand): give up and treat exec as unavailable. */
#define RECLAIM_JOB_TIMEOUT_MS	10000

struct reclaim_rec {
	long	pid;		/* 0: none */
	char	start[24];	/* /proc/PID/stat field 22 */
};

enum reclaim_job {
	RECLAIM_JOB_NONE = 0,
	RECLAIM_JOB_LEARN,
	RECLAIM_JOB_KILL
};

enum reclaim_phase {
	RECLAIM_PHASE_OPEN = 0,
	RECLAIM_PHASE_EXEC,
	RECLAIM_PHASE_READ,
	RECLAIM_PHASE_CLOSE
};

struct reclaim {
	const struct config_server	*cfg;
	char				*path;
	struct reclaim_rec		 cur;
	struct reclaim_rec		 prev[RECLAIM_MAX_PREV];
	int				 nprev;
	int				 had_prev;
	int				 learn_wanted;
	int				 kill_wanted;
	enum reclaim_exec		 exec;
	enum reclaim_result		 result;
	long				 killed_at_ms;

	enum reclaim_job		 job;
	enum reclaim_phase		 phase;
	long				 job_started_ms;
	int				 job_failed;
	LIBSSH2_CHANNEL			*ch;
	char				*cmd;
	struct reclaim_rec		 target;
	char				 out[RECLAIM_OUT_MAX];
	size_t				 outlen;
	int				 read_stderr;
	int				 exit_status;
};

/* Append a record to the list of previous sessions (oldest dropped). */
static void
reclaim_push_prev(struct reclaim *r, const struct reclaim_rec *rec)
{
	int	i;

	if (rec->pid == 0)
		return;
	for (i = 0; i < r->nprev; i++)
		if (r->prev[i].pid == rec->pid &&
		    strcmp(r->prev[i].start, rec->start) == 0)
			return;
	if (r->nprev == RECLAIM_MAX_PREV) {
		memmove(&r->prev[0], &r->prev[1],
		    (RECLAIM_MAX_PREV - 1) * sizeof r->prev[0]);
		r->nprev--;
	}
	r->prev[r->nprev++] = *rec;
}

/* Parse "PID START" (both decimal); 0 on success. */
static int
reclaim_parse_rec(const char *s, struct reclaim_rec *rec)
{
	char	*end;
	long	 pid;
	size_t	 n;

	errno = 0;
	pid = strtol(s, &end, 10);
	if (errno != 0 || end == s || pid <= 1 || *end != ' ')
		return -1;
	s = end + 1;
	n = strspn(s, "0123456789");
	if (n == 0 || n >= sizeof rec->start ||
	    (s[n] != '\0' && s[n] != '\n' && s[n] != ' '))
		return -1;
	rec->pid = pid;
	memcpy(rec->start, s, n);
	rec->start[n] = '\0';
	return 0;
}

/*
 * Load the sessions a previous run of the daemon remembered. The first
 * line names the server (host port user): records of another server are
 * never used.
 */
static void
reclaim_load(struct reclaim *r)
{
	struct reclaim_rec	 rec;
	char			 line[512], *want;
	FILE			*fp;

	if (r->path == NULL || (fp = fopen(r->path, "re")) == NULL)
		return;
	want = xasprintf("%s %d %s\n", r->cfg->host, r->cfg->port,
	    r->cfg->user);
	if (fgets(line, sizeof line, fp) != NULL && strcmp(line, want) == 0) {
		while (fgets(line, sizeof line, fp) != NULL)
			if (reclaim_parse_rec(line, &rec) == 0)
				reclaim_push_prev(r, &rec);
	}
	free(want);
	fclose(fp);
	if (r->nprev > 0)
		log_info(r->cfg->name, NULL, "remembered %d server-side "
		    "session(s) of a previous run from %s", r->nprev, r->path);
}

/* Write what we know (current and previous sessions), atomically. */
static void
reclaim_save(struct reclaim *r)
{
	struct buf	 b;
	char		*tmp;
	int		 fd, i, ok = 0;

	if (r->path == NULL)
		return;
	buf_init(&b);
	buf_printf(&b, "%s %d %s\n", r->cfg->host, r->cfg->port,
	    r->cfg->user);
	for (i = 0; i < r->nprev; i++)
		buf_printf(&b, "%ld %s\n", r->prev[i].pid, r->prev[i].start);
	if (r->cur.pid != 0)
		buf_printf(&b, "%ld %s\n", r->cur.pid, r->cur.start);
	tmp = xasprintf("%s.tmp", r->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd != -1) {
		ok = write(fd, buf_data(&b), b.len) == (ssize_t)b.len &&
		    fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		ok = ok && rename(tmp, r->path) == 0;
	}
	/* Not fatal: reclaim still works within this run. */
	if (!ok) {
		log_warn(r->cfg->name, NULL, "cannot save %s: %s", r->path,
		    strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	buf_clear(&b);
}

/* Create the reclaim state of one server. */
struct reclaim *
reclaim_new(const struct config_server *cfg, const char *state_dir,
    const char *state_name)
{
	struct reclaim	*r = xcalloc(1, sizeof *r);

	r->cfg = cfg;
	if (state_dir != NULL && access(state_dir, W_OK) == 0)
		r->path = xasprintf("%s/%s.%s.session", state_dir, state_name,
		    cfg->name);
	reclaim_load(r);
	return r;
}

/* Free; a channel in flight belongs to a session being freed too. */
void
reclaim_free(struct reclaim *r)
{
	if (r == NULL)
		return;
	free(r->cmd);
	free(r->path);
	free(r);
}

/* Re-point at an equal server spec of a new config. */
void
reclaim_set_config(struct reclaim *r, const struct config_server *cfg)
{
	r->cfg = cfg;
}

/* Drop the job in flight without libssh2 calls (its session is gone). */
static void
reclaim_abandon_job(struct reclaim *r)
{
	/* A kill that did not run: the target is still stale. */
	if (r->job == RECLAIM_JOB_KILL)
		reclaim_push_prev(r, &r->target);
	r->job = RECLAIM_JOB_NONE;
	r->ch = NULL;
	free(r->cmd);
	r->cmd = NULL;
}

/* A session came up: learn its server-side process. */
void
reclaim_session_up(struct reclaim *r)
{
	r->had_prev = r->nprev > 0;
	r->cur.pid = 0;
	r->learn_wanted = r->cfg->reclaim_stale_port;
	r->kill_wanted = 0;
	r->result = RECLAIM_RESULT_NONE;
}

/* The session is gone: its process is now a candidate stale session. */
void
reclaim_session_down(struct reclaim *r)
{
	reclaim_abandon_job(r);
	reclaim_push_prev(r, &r->cur);
	r->cur.pid = 0;
	r->learn_wanted = r->kill_wanted = 0;
}

/* Queue the ending of the remembered previous sessions. */
int
reclaim_start_kill(struct reclaim *r)
{
	if (!r->cfg->reclaim_stale_port || r->nprev == 0 ||
	    r->exec == RECLAIM_EXEC_DENIED || r->kill_wanted)
		return 0;
	r->kill_wanted = 1;
	return 1;
}

/* 1 while a job (learn or kill) is queued or running. */
int
reclaim_busy(const struct reclaim *r)
{
	return r->job != RECLAIM_JOB_NONE || r->learn_wanted ||
	    (r->kill_wanted && r->nprev > 0);
}

/* 1 while a kill is queued or running. */
int
reclaim_killing(const struct reclaim *r)
{
	return r->kill_wanted || r->job == RECLAIM_JOB_KILL;
}

/* Milliseconds since the last successful kill, or -1. */
long
reclaim_killed_ago(const struct reclaim *r, long now_ms)
{
	return r->killed_at_ms > 0 ? now_ms - r->killed_at_ms : -1;
}

/* The outcome of the last kill, once. */
enum reclaim_result
reclaim_take_result(struct reclaim *r)
{
	enum reclaim_result	res = r->result;

	r->result = RECLAIM_RESULT_NONE;
	return res;
}

/* Whether exec works on this server. */
enum reclaim_exec
reclaim_exec_state(const struct reclaim *r)
{
	return r->exec;
}

/* Our current session's server-side pid, or 0. */
long
reclaim_server_pid(const struct reclaim *r)
{
	return r->cur.pid;
}

/* 1 if a previous session was known when this one came up. */
int
reclaim_had_previous(const struct reclaim *r)
{
	return r->had_prev;
}

/* The learn command (see reclaim.h), for `tunnels check --connect`. */
const char *
reclaim_learn_command(void)
{
	return RECLAIM_LEARN_CMD;
}

/* The guarded kill, as run on the server through the account's shell. */
char *
reclaim_kill_command(long pid, const char *start)
{
	return xasprintf("[ \"$(cat /proc/%ld/comm 2>/dev/null)\" = sshd ] && "
	    "[ \"$(cut -d' ' -f22 /proc/%ld/stat 2>/dev/null)\" = %s ] && "
	    "kill %ld && echo killed || echo gone", pid, pid, start, pid);
}

/* The job finished (the channel is freed): act on its output. */
static void
reclaim_finish(struct reclaim *r, long now)
{
	struct reclaim_rec	rec;

	r->out[r->outlen] = '\0';
	if (r->job == RECLAIM_JOB_LEARN) {
		if (!r->job_failed && r->exit_status == 0 &&
		    reclaim_parse_rec(r->out, &rec) == 0) {
			r->cur = rec;
			r->exec = RECLAIM_EXEC_OK;
			log_info(r->cfg->name, NULL, "our server-side session "
			    "is pid %ld (start time %s)", rec.pid, rec.start);
			reclaim_save(r);
		} else {
			if (r->exec != RECLAIM_EXEC_DENIED)
				log_warn(r->cfg->name, NULL, "cannot learn our "
				    "server-side session (exit status %d, "
				    "output \"%.60s\"): this account may not run "
				    "commands (restricted key or ForceCommand); "
				    "a port held by a stale session will be "
				    "freed only by the server's ClientAlive",
				    r->exit_status, r->out);
			r->exec = RECLAIM_EXEC_DENIED;
		}
	} else {
		if (!r->job_failed && strncmp(r->out, "killed", 6) == 0) {
			r->result = RECLAIM_RESULT_KILLED;
			r->killed_at_ms = now;
			log_notice(r->cfg->name, NULL, "ended our stale "
			    "server-side session pid %ld", r->target.pid);
		} else if (!r->job_failed && strncmp(r->out, "gone", 4) == 0) {
			r->result = RECLAIM_RESULT_GONE;
			log_info(r->cfg->name, NULL, "server-side session pid "
			    "%ld no longer exists", r->target.pid);
		} else {
			r->result = RECLAIM_RESULT_FAILED;
			r->exec = RECLAIM_EXEC_DENIED;
			log_warn(r->cfg->name, NULL, "could not end server-side "
			    "session pid %ld (exit status %d, output "
			    "\"%.60s\")", r->target.pid, r->exit_status,
			    r->out);
		}
		reclaim_save(r);
		/* The last queued kill is done: waiters may try again now. */
		if (r->nprev == 0 || r->exec == RECLAIM_EXEC_DENIED)
			r->kill_wanted = 0;
	}
	r->job = RECLAIM_JOB_NONE;
	free(r->cmd);
	r->cmd = NULL;
}

/* Start the next job, if any; 1 when one is running. */
static int
reclaim_next_job(struct reclaim *r, long now)
{
	if (r->job != RECLAIM_JOB_NONE)
		return 1;
	/* A kill first: a refused tunnel is waiting for it. */
	if (r->kill_wanted && r->nprev > 0) {
		/* Never kill a record twice: take it off the list now. */
		r->target = r->prev[--r->nprev];
		r->job = RECLAIM_JOB_KILL;
		r->cmd = reclaim_kill_command(r->target.pid, r->target.start);
		log_notice(r->cfg->name, NULL, "ending our stale server-side "
		    "session: %s", r->cmd);
	} else if (r->learn_wanted) {
		r->learn_wanted = 0;
		r->job = RECLAIM_JOB_LEARN;
		r->cmd = xstrdup(RECLAIM_LEARN_CMD);
	} else {
		r->kill_wanted = 0;
		return 0;
	}
	r->phase = RECLAIM_PHASE_OPEN;
	r->job_started_ms = now;
	r->job_failed = 0;
	r->outlen = 0;
	r->read_stderr = 0;
	r->exit_status = -1;
	return 1;
}

/* Note a failed call: fatal ones end the session, others the job. */
static enum reclaim_step
reclaim_call_failed(struct reclaim *r, LIBSSH2_SESSION *ss, const char *what,
    int rc)
{
	log_debug(r->cfg->name, NULL, "reclaim %s: %s (%d)", what,
	    ssherr_text(ss), rc);
	if (ssherr_session_fatal(rc))
		return RECLAIM_STEP_DEAD;
	r->job_failed = 1;
	return RECLAIM_STEP_OK;
}

/* Read the command's output (stderr is drained and dropped). */
static enum reclaim_step
reclaim_read(struct reclaim *r, LIBSSH2_SESSION *ss, int *progress)
{
	char	scratch[256];
	ssize_t	n;

	for (;;) {
		if (r->read_stderr)
			n = libssh2_channel_read_stderr(r->ch, scratch,
			    sizeof scratch);
		else
			n = libssh2_channel_read(r->ch, r->outlen <
			    RECLAIM_OUT_MAX - 1 ? r->out + r->outlen : scratch,
			    r->outlen < RECLAIM_OUT_MAX - 1 ?
			    RECLAIM_OUT_MAX - 1 - r->outlen : sizeof scratch);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			if (ssherr_slot_busy(ss))
				return RECLAIM_STEP_BLOCKED;
			if (!r->read_stderr) {
				r->read_stderr = 1;
				continue;
			}
			r->read_stderr = 0;
			return RECLAIM_STEP_OK;
		}
		if (n > 0) {
			*progress = 1;
			if (!r->read_stderr && r->outlen < RECLAIM_OUT_MAX - 1)
				r->outlen += (size_t)n;
			continue;
		}
		if (n < 0)
			return reclaim_call_failed(r, ss, "read", (int)n);
		/* n == 0: end of this stream. */
		if (!r->read_stderr) {
			r->read_stderr = 1;
			continue;
		}
		if (libssh2_channel_eof(r->ch)) {
			r->exit_status = libssh2_channel_get_exit_status(r->ch);
			r->phase = RECLAIM_PHASE_CLOSE;
			return RECLAIM_STEP_OK;
		}
		r->read_stderr = 0;
		return RECLAIM_STEP_OK;
	}
}

/* Run the learn or kill job one step further. */
enum reclaim_step
reclaim_step(struct reclaim *r, LIBSSH2_SESSION *ss, void **open_slot,
    int *progress)
{
	enum reclaim_step	 ret;
	LIBSSH2_CHANNEL		*ch;
	long			 now = (long)time_now_ms();
	int			 rc;

	if (!reclaim_next_job(r, now))
		return RECLAIM_STEP_OK;
	if (r->phase != RECLAIM_PHASE_CLOSE && r->phase != RECLAIM_PHASE_OPEN &&
	    now - r->job_started_ms > RECLAIM_JOB_TIMEOUT_MS) {
		log_warn(r->cfg->name, NULL, "command on the server did not "
		    "finish within %ds: giving up", RECLAIM_JOB_TIMEOUT_MS / 1000);
		r->job_failed = 1;
		r->phase = RECLAIM_PHASE_CLOSE;
	}
	if (r->phase == RECLAIM_PHASE_OPEN) {
		/* One channel open in flight per session (libssh2 state). */
		if (*open_slot != NULL && *open_slot != r)
			return RECLAIM_STEP_OK;
		*open_slot = r;
		ch = libssh2_channel_open_session(ss);
		if (ch == NULL) {
			rc = libssh2_session_last_errno(ss);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return ssherr_slot_busy(ss) ?
				    RECLAIM_STEP_BLOCKED : RECLAIM_STEP_OK;
			*open_slot = NULL;
			ret = reclaim_call_failed(r, ss, "channel open", rc);
			if (ret == RECLAIM_STEP_OK)
				reclaim_finish(r, now);
			return ret;
		}
		*open_slot = NULL;
		r->ch = ch;
		r->phase = RECLAIM_PHASE_EXEC;
		*progress = 1;
	}
	if (r->phase == RECLAIM_PHASE_EXEC) {
		rc = libssh2_channel_process_startup(r->ch, "exec",
		    sizeof "exec" - 1, r->cmd, (unsigned)strlen(r->cmd));
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return ssherr_slot_busy(ss) ? RECLAIM_STEP_BLOCKED :
			    RECLAIM_STEP_OK;
		if (rc != 0) {
			ret = reclaim_call_failed(r, ss, "exec", rc);
			if (ret == RECLAIM_STEP_DEAD)
				return ret;
			r->phase = RECLAIM_PHASE_CLOSE;
		} else
			r->phase = RECLAIM_PHASE_READ;
		*progress = 1;
	}
	if (r->phase == RECLAIM_PHASE_READ) {
		ret = reclaim_read(r, ss, progress);
		if (ret != RECLAIM_STEP_OK)
			return ret;
	}
	if (r->phase == RECLAIM_PHASE_CLOSE) {
		rc = libssh2_channel_free(r->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return ssherr_slot_busy(ss) ? RECLAIM_STEP_BLOCKED :
			    RECLAIM_STEP_OK;
		r->ch = NULL;
		*progress = 1;
		reclaim_finish(r, now);
	}
	return RECLAIM_STEP_OK;
}
