/*
 * Stale-port reclaim over exec channels.
 *
 * Learning: the shell a server starts for an exec request is a child of
 * the connection's own server process, which holds the connection's
 * forwards: "sshd: user@notty" (comm sshd; sshd-session since OpenSSH
 * 9.8), Dropbear's per-connection "dropbear". So $PPID is the process to
 * remember, and field 22 of its /proc stat (start time in clock ticks)
 * tells it apart from a later process that reuses the PID. Its name and
 * owner come along: only a known per-connection name is ever ended, and a
 * process owned by another uid (Dropbear keeps root) cannot be. sshd's
 * processes are not dumpable, so ss -p or fuser cannot find the holder of
 * a port; this is the only reliable way.
 *
 * Some servers (AsyncSSH) serve every connection from one process: $PPID
 * is then the same for all our sessions. When a session learns the
 * process a previous one learned, that process is not ours to end: it is
 * never remembered for killing.
 *
 * Ending: the kill command checks the name and the start time before
 * signalling, never signals the process serving the command itself, and
 * says what it found: killed, gone, denied, shared, other NAME.
 *
 * Everything the server prints is parsed strictly and bounded, and only
 * sanitised text reaches the log.
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
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "config.h"
#include "log.h"
#include "reclaim.h"
#include "ssherr.h"
#include "util.h"

/*
 * One line: PID START UID OWNER SAVED NAME (our uid, the process's real
 * and saved uid). sed drops "PID (comm) " up to the last ") ", so a comm
 * with spaces or parentheses cannot shift the fields.
 */
#define RECLAIM_LEARN_CMD \
	"p=$PPID; echo \"$p $(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f20)" \
	" $(id -u) $(awk '/^Uid:/ { print $2, $4 }' /proc/$p/status)" \
	" $(cat /proc/$p/comm)\""
/* Previous sessions remembered (several links may have died in a row). */
#define RECLAIM_MAX_PREV	4
#define RECLAIM_OUT_MAX		256
/* An exec that has not finished by then will not (e.g. a hanging
 * ForceCommand): give up and treat exec as unavailable. */
#define RECLAIM_JOB_TIMEOUT_MS	10000
/* Longest digit strings accepted for a PID and a uid. */
#define RECLAIM_PID_DIGITS	9
#define RECLAIM_UID_DIGITS	10

/* The server processes that serve exactly one connection. */
static const char *const reclaim_names[] = {
	"sshd", "sshd-session", "dropbear"
};

/* Why a remembered process is left alone. */
enum reclaim_keep {
	RECLAIM_KEEP_NONE = 0,	/* ours alone: may be ended */
	RECLAIM_KEEP_NAME,	/* not a known per-connection process */
	RECLAIM_KEEP_SHARED,	/* serves several of our sessions */
	RECLAIM_KEEP_DENIED	/* the account may not signal it */
};

struct reclaim_rec {
	long			pid;		/* 0: none */
	char			start[24];	/* /proc/PID/stat field 22 */
	char			name[16];
	long			owner;		/* -1: unknown */
	enum reclaim_keep	keep;
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
	int64_t				 killed_at_ms;
	long				 uid;		/* ours; -1 unknown */
	struct reclaim_rec		 told;	/* why it stays: logged once */
	int				 uid_told;	/* owner warning given */

	enum reclaim_job		 job;
	enum reclaim_phase		 phase;
	int64_t				 job_started_ms;
	int				 job_failed;
	LIBSSH2_CHANNEL			*ch;
	char				*cmd;
	struct reclaim_rec		 target;
	char				 out[RECLAIM_OUT_MAX];
	size_t				 outlen;
	int				 read_stderr;
	int				 overflow;	/* output cut */
	int				 exit_status;
};

/* 1 if name is a process that serves exactly one connection. */
int
reclaim_known_name(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof reclaim_names / sizeof reclaim_names[0]; i++)
		if (strcmp(name, reclaim_names[i]) == 0)
			return 1;
	return 0;
}

/*
 * Take a decimal field of 1..max digits ending in a space from *sp;
 * -1 if there is none.
 */
static long
reclaim_take_num(const char **sp, size_t max, char *copy, size_t copylen)
{
	const char	*s = *sp;
	size_t		 n = strspn(s, "0123456789");
	long		 v;

	if (n == 0 || n > max || s[n] != ' ')
		return -1;
	if (copy != NULL) {
		if (n >= copylen)
			return -1;
		memcpy(copy, s, n);
		copy[n] = '\0';
		v = 0;
	} else
		v = strtol(s, NULL, 10);
	*sp = s + n + 1;
	return v;
}

/*
 * Parse "PID START UID OWNER SAVED NAME\n" (the learn command's output):
 * decimal fields, a name of 1-15 bytes, one line, nothing after it.
 */
int
reclaim_parse_learn(const char *out, size_t len, struct reclaim_proc *p)
{
	const char	*s = out, *nl;
	char		 line[RECLAIM_OUT_MAX];
	size_t		 n;

	memset(p, 0, sizeof *p);
	if (len == 0 || len >= sizeof line || memchr(out, '\0', len) != NULL)
		return -1;
	memcpy(line, out, len);
	line[len] = '\0';
	/* One line, its newline optional, nothing after. */
	if ((nl = strchr(line, '\n')) != NULL && nl[1] != '\0')
		return -1;
	s = line;
	if ((p->pid = reclaim_take_num(&s, RECLAIM_PID_DIGITS, NULL, 0)) < 2 ||
	    reclaim_take_num(&s, sizeof p->start - 1, p->start,
	    sizeof p->start) < 0 ||
	    (p->uid = reclaim_take_num(&s, RECLAIM_UID_DIGITS, NULL, 0)) < 0 ||
	    (p->owner = reclaim_take_num(&s, RECLAIM_UID_DIGITS, NULL, 0)) < 0 ||
	    (p->saved = reclaim_take_num(&s, RECLAIM_UID_DIGITS, NULL, 0)) < 0)
		return -1;
	n = nl != NULL ? (size_t)(nl - s) : strlen(s);
	/* The kernel's comm is at most 15 bytes. */
	if (n == 0 || n >= sizeof p->name)
		return -1;
	str_sanitize_buf(s, n, p->name, sizeof p->name, 0);
	return 0;
}

/* Parse the kill command's one line: killed, gone, denied, other NAME. */
enum reclaim_kill_out
reclaim_parse_kill(const char *out, size_t len, char *name, size_t namelen)
{
	static const struct {
		const char		*word;
		enum reclaim_kill_out	 out;
	} words[] = {
		{ "killed", RECLAIM_OUT_KILLED }, { "gone", RECLAIM_OUT_GONE },
		{ "denied", RECLAIM_OUT_DENIED }, { "shared", RECLAIM_OUT_SHARED }
	};
	size_t	i, n;

	if (namelen > 0)
		name[0] = '\0';
	/* One line; its newline optional. */
	n = len;
	if (n > 0 && out[n - 1] == '\n')
		n--;
	if (memchr(out, '\n', n) != NULL || memchr(out, '\0', n) != NULL)
		return RECLAIM_OUT_BAD;
	for (i = 0; i < sizeof words / sizeof words[0]; i++)
		if (n == strlen(words[i].word) &&
		    memcmp(out, words[i].word, n) == 0)
			return words[i].out;
	if (n >= 6 && memcmp(out, "other ", 6) == 0) {
		/* A PID that went away between the checks prints no name. */
		if (n == 6)
			return RECLAIM_OUT_GONE;
		if (n - 6 > 15)
			return RECLAIM_OUT_BAD;
		str_sanitize_buf(out + 6, n - 6, name, namelen, 0);
		return RECLAIM_OUT_OTHER;
	}
	return RECLAIM_OUT_BAD;
}

/* The command that learns the session's process. */
const char *
reclaim_learn_command(void)
{
	return RECLAIM_LEARN_CMD;
}

/*
 * The guarded kill, as run on the server through the account's shell.
 * pid, start and name come from a parsed record: digits, and a name that
 * reclaim_known_name() accepted.
 */
char *
reclaim_kill_command(long pid, const char *start, const char *name)
{
	return xasprintf("p=%ld; if [ $p = $PPID ]; then echo shared; "
	    "elif [ ! -e /proc/$p/stat ]; then echo gone; "
	    "else n=$(cat /proc/$p/comm 2>/dev/null); "
	    "s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20); "
	    "if [ \"$n\" != %s ] || [ \"$s\" != %s ]; then echo \"other $n\"; "
	    "elif kill $p 2>/dev/null; then echo killed; "
	    "elif [ -e /proc/$p/stat ]; then echo denied; "
	    "else echo gone; fi; fi", pid, name, start);
}

/* The keep reason of a record as text, for the state file. */
static const char *
reclaim_keep_word(enum reclaim_keep k)
{
	switch (k) {
	case RECLAIM_KEEP_NAME:
		return "name";
	case RECLAIM_KEEP_SHARED:
		return "shared";
	case RECLAIM_KEEP_DENIED:
		return "denied";
	default:
		return "-";
	}
}

/* 1 if two records name the same process. */
static int
reclaim_same(const struct reclaim_rec *a, const struct reclaim_rec *b)
{
	return a->pid == b->pid && strcmp(a->start, b->start) == 0;
}

/* Append a record to the list of previous sessions (oldest dropped). */
static void
reclaim_push_prev(struct reclaim *r, const struct reclaim_rec *rec)
{
	int	i;

	if (rec->pid == 0)
		return;
	for (i = 0; i < r->nprev; i++)
		if (reclaim_same(&r->prev[i], rec)) {
			/* Known already: keep the stronger reason to stay. */
			if (rec->keep > r->prev[i].keep)
				r->prev[i].keep = rec->keep;
			return;
		}
	if (r->nprev == RECLAIM_MAX_PREV) {
		memmove(&r->prev[0], &r->prev[1],
		    (RECLAIM_MAX_PREV - 1) * sizeof r->prev[0]);
		r->nprev--;
	}
	r->prev[r->nprev++] = *rec;
}

/* Index of the newest previous session that may be ended, or -1. */
static int
reclaim_pick(const struct reclaim *r)
{
	int	i;

	for (i = r->nprev - 1; i >= 0; i--)
		if (r->prev[i].keep == RECLAIM_KEEP_NONE)
			return i;
	return -1;
}

/*
 * Parse a state file line "PID START [NAME [KEEP]]" (records of older
 * versions have no name: those only ever ended sshd); 0 on success.
 */
static int
reclaim_parse_rec(const char *s, struct reclaim_rec *rec)
{
	char	pid[16], start[24], name[32], keep[16];
	char	*end;
	int	 n;

	memset(rec, 0, sizeof *rec);
	rec->owner = -1;
	n = sscanf(s, "%15s %23s %31s %15s", pid, start, name, keep);
	if (n < 2 || strspn(pid, "0123456789") != strlen(pid) ||
	    strspn(start, "0123456789") != strlen(start))
		return -1;
	errno = 0;
	rec->pid = strtol(pid, &end, 10);
	if (errno != 0 || *end != '\0' || rec->pid <= 1)
		return -1;
	memcpy(rec->start, start, strlen(start) + 1);
	if (n < 3)
		memcpy(name, "sshd", sizeof "sshd");
	str_sanitize_buf(name, strlen(name), rec->name, sizeof rec->name, 0);
	if (!reclaim_known_name(rec->name))
		rec->keep = RECLAIM_KEEP_NAME;
	else if (n == 4 && strcmp(keep, "shared") == 0)
		rec->keep = RECLAIM_KEEP_SHARED;
	else if (n == 4 && strcmp(keep, "denied") == 0)
		rec->keep = RECLAIM_KEEP_DENIED;
	return 0;
}

/* 1 if rec is also in the list of previous sessions. */
static int
reclaim_in_prev(const struct reclaim *r, const struct reclaim_rec *rec)
{
	int	i;

	for (i = 0; i < r->nprev; i++)
		if (reclaim_same(&r->prev[i], rec))
			return 1;
	return 0;
}

/*
 * Open the state file for reading: never through a symlink, never a FIFO
 * or device (opening one would block or read anything), NULL otherwise.
 */
static FILE *
reclaim_open_state(const char *path)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		return NULL;
	}
	return fp;
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

	if (r->path == NULL || (fp = reclaim_open_state(r->path)) == NULL)
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
	struct reclaim_rec	*rec;
	struct buf		 b;
	int			 i;

	if (r->path == NULL)
		return;
	buf_init(&b);
	buf_printf(&b, "%s %d %s\n", r->cfg->host, r->cfg->port,
	    r->cfg->user);
	for (i = 0; i <= r->nprev; i++) {
		rec = i < r->nprev ? &r->prev[i] : &r->cur;
		/* The current session may be a previous one's (shared). */
		if (rec->pid == 0 || (rec == &r->cur && reclaim_in_prev(r, rec)))
			continue;
		buf_printf(&b, "%ld %s %s %s\n", rec->pid, rec->start,
		    rec->name, reclaim_keep_word(rec->keep));
	}
	/* Not fatal: reclaim still works within this run. */
	if (atomicfile_write(r->path, buf_data(&b), b.len, 0600, NULL) == -1)
		log_warn(r->cfg->name, NULL, "cannot save %s: %s", r->path,
		    strerror(errno));
	buf_clear(&b);
}

/* Create the reclaim state of one server. */
struct reclaim *
reclaim_new(const struct config_server *cfg, const char *state_dir,
    const char *state_name)
{
	struct reclaim	*r = xcalloc(1, sizeof *r);

	r->cfg = cfg;
	r->uid = -1;
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

/*
 * The state directory changed (a reload): what we know is saved at the
 * new place at once, and the old file removed, so that the next start
 * (which reads the new place) knows our server-side sessions.
 */
void
reclaim_set_state_dir(struct reclaim *r, const char *state_dir,
    const char *state_name)
{
	char	*path = NULL, *old = r->path;

	if (state_dir != NULL && access(state_dir, W_OK) == 0)
		path = xasprintf("%s/%s.%s.session", state_dir, state_name,
		    r->cfg->name);
	if (path == NULL || (old != NULL && strcmp(path, old) == 0)) {
		/* Not writable: keep the old file rather than lose it. */
		free(path);
		return;
	}
	r->path = path;
	reclaim_save(r);
	if (old != NULL)
		unlink(old);
	free(old);
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
	memset(&r->cur, 0, sizeof r->cur);
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
	memset(&r->cur, 0, sizeof r->cur);
	r->learn_wanted = r->kill_wanted = 0;
}

/*
 * The session is gone and so is its server-side process: the server said
 * so (its DISCONNECT) or closed the connection after ours. Nothing of it
 * is left to end, so it is not remembered (else every clean restart would
 * add a record, and a later refusal would run the kill against it).
 */
void
reclaim_session_ended(struct reclaim *r)
{
	reclaim_abandon_job(r);
	if (r->cur.pid != 0)
		log_debug(r->cfg->name, NULL, "server-side session pid %ld "
		    "ended with ours: not remembered", r->cur.pid);
	memset(&r->cur, 0, sizeof r->cur);
	r->learn_wanted = r->kill_wanted = 0;
	reclaim_save(r);
}

/* Queue the ending of the remembered previous sessions. */
int
reclaim_start_kill(struct reclaim *r)
{
	if (!r->cfg->reclaim_stale_port || reclaim_pick(r) < 0 ||
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
	    r->kill_wanted;
}

/* The server's reply the running job waits for, if any. */
const char *
reclaim_awaiting(const struct reclaim *r)
{
	if (r->job == RECLAIM_JOB_NONE || r->ch == NULL)
		return NULL;
	if (r->phase == RECLAIM_PHASE_EXEC)
		return "exec";
	if (r->phase == RECLAIM_PHASE_CLOSE)
		return "close";
	return NULL;
}

/* 1 while a kill is queued or running. */
int
reclaim_killing(const struct reclaim *r)
{
	return r->kill_wanted || r->job == RECLAIM_JOB_KILL;
}

/* Milliseconds since the last successful kill, or -1. */
int64_t
reclaim_killed_ago(const struct reclaim *r, int64_t now_ms)
{
	return r->killed_at_ms > 0 ? now_ms - r->killed_at_ms : -1;
}

/* Why the newest previous session that stays is left alone. */
int
reclaim_blocked(const struct reclaim *r, char *buf, size_t len)
{
	const struct reclaim_rec	*rec = NULL;
	int				 i;

	if (reclaim_pick(r) >= 0)
		return 0;
	for (i = r->nprev - 1; i >= 0 && rec == NULL; i--)
		if (r->prev[i].keep != RECLAIM_KEEP_NONE)
			rec = &r->prev[i];
	if (rec == NULL)
		return 0;
	switch (rec->keep) {
	case RECLAIM_KEEP_SHARED:
		snprintf(buf, len, "its server process (pid %ld, %s) serves "
		    "more than one of our sessions, so it is not ours to end",
		    rec->pid, rec->name);
		break;
	case RECLAIM_KEEP_DENIED:
		snprintf(buf, len, "this account is not permitted to end its "
		    "server process (pid %ld, %s%s)", rec->pid, rec->name,
		    rec->owner == 0 ? ", runs as root" : "");
		break;
	default:
		snprintf(buf, len, "its server process (pid %ld, %s) is not a "
		    "known per-connection server process (sshd, sshd-session, "
		    "dropbear), so it is never ended", rec->pid, rec->name);
		break;
	}
	return 1;
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

/*
 * The learn command answered p: remember it as this session's process,
 * unless it also served an earlier session (then it is shared, and no
 * record of it is ever ended).
 */
static void
reclaim_learned(struct reclaim *r, const struct reclaim_proc *p)
{
	struct reclaim_rec	rec;
	int			i, shared = 0, told;

	memset(&rec, 0, sizeof rec);
	rec.pid = p->pid;
	memcpy(rec.start, p->start, sizeof rec.start);
	memcpy(rec.name, p->name, sizeof rec.name);
	rec.owner = p->owner;
	r->uid = p->uid;
	r->exec = RECLAIM_EXEC_OK;
	for (i = 0; i < r->nprev; i++)
		if (reclaim_same(&r->prev[i], &rec)) {
			r->prev[i].keep = RECLAIM_KEEP_SHARED;
			shared = 1;
		}
	if (shared || (reclaim_same(&r->told, &rec) &&
	    r->told.keep == RECLAIM_KEEP_SHARED))
		rec.keep = RECLAIM_KEEP_SHARED;
	else if (!reclaim_known_name(rec.name))
		rec.keep = RECLAIM_KEEP_NAME;
	r->cur = rec;
	log_info(r->cfg->name, NULL, "our server-side session is pid %ld "
	    "(%s, start time %s, uid %ld)", rec.pid, rec.name, rec.start,
	    rec.owner);
	/* Why it stays: once per process and reason, not at every connect. */
	told = reclaim_same(&r->told, &rec) && r->told.keep == rec.keep;
	if (told)
		log_debug(r->cfg->name, NULL, "server-side pid %ld: left alone "
		    "(%s)", rec.pid, reclaim_keep_word(rec.keep));
	else if (rec.keep == RECLAIM_KEEP_SHARED)
		log_notice(r->cfg->name, NULL, "server-side pid %ld (%s) also "
		    "served an earlier session of ours: it serves more than "
		    "one of our sessions (a server that serves every "
		    "connection from one process), so it is not ours to end; "
		    "a port held by a stale session waits for the server's "
		    "own keepalive", rec.pid, rec.name);
	else if (rec.keep == RECLAIM_KEEP_NAME)
		log_notice(r->cfg->name, NULL, "server-side pid %ld (%s) is "
		    "not a known per-connection server process (sshd, "
		    "sshd-session, dropbear): it is never ended; a port held "
		    "by a stale session waits for the server's own keepalive",
		    rec.pid, rec.name);
	else if (p->uid != 0 && p->uid != p->owner && p->uid != p->saved &&
	    !r->uid_told) {
		/* The kill alone can tell (capabilities): warn, still try. */
		r->uid_told = 1;
		log_notice(r->cfg->name, NULL, "server-side pid %ld (%s) runs "
		    "as uid %ld and this account is uid %ld: it may not be "
		    "permitted to end it; a port held by a stale session then "
		    "waits for the server's own keepalive (Dropbear: -K; "
		    "OpenSSH: ClientAliveInterval)", rec.pid, rec.name,
		    p->owner, p->uid);
	}
	if (rec.keep != RECLAIM_KEEP_NONE)
		r->told = rec;
	reclaim_save(r);
}

/* The kill job finished: act on what the command said. */
static void
reclaim_killed(struct reclaim *r, int64_t now)
{
	struct reclaim_rec	*t = &r->target;
	char			 name[16], out[64];
	enum reclaim_kill_out	 o = RECLAIM_OUT_BAD;

	if (!r->job_failed)
		o = reclaim_parse_kill(r->out, r->outlen, name, sizeof name);
	switch (o) {
	case RECLAIM_OUT_KILLED:
		r->result = RECLAIM_RESULT_KILLED;
		r->killed_at_ms = now;
		log_notice(r->cfg->name, NULL, "ended our stale server-side "
		    "session pid %ld (%s)", t->pid, t->name);
		break;
	case RECLAIM_OUT_GONE:
		r->result = RECLAIM_RESULT_GONE;
		log_info(r->cfg->name, NULL, "server-side session pid %ld "
		    "no longer exists", t->pid);
		break;
	case RECLAIM_OUT_OTHER:
		r->result = RECLAIM_RESULT_GONE;
		log_info(r->cfg->name, NULL, "server-side pid %ld is another "
		    "process now (%s): our session is gone, nothing ended",
		    t->pid, name);
		break;
	case RECLAIM_OUT_SHARED:
		r->result = RECLAIM_RESULT_KEPT;
		t->keep = RECLAIM_KEEP_SHARED;
		reclaim_push_prev(r, t);
		log_notice(r->cfg->name, NULL, "server-side pid %ld (%s) "
		    "serves this session too: not ours to end, nothing ended",
		    t->pid, t->name);
		break;
	case RECLAIM_OUT_DENIED:
		r->result = RECLAIM_RESULT_KEPT;
		t->keep = RECLAIM_KEEP_DENIED;
		reclaim_push_prev(r, t);
		/* The owner is unknown for records of a previous run. */
		snprintf(out, sizeof out, ", uid %ld", t->owner);
		log_warn(r->cfg->name, NULL, "cannot end our stale server-side "
		    "session pid %ld (%s%s): not permitted for this account; "
		    "the server's own keepalive must end it (Dropbear: -K; "
		    "OpenSSH: ClientAliveInterval)", t->pid, t->name,
		    t->owner >= 0 ? out : "");
		break;
	default:
		r->result = RECLAIM_RESULT_FAILED;
		r->exec = RECLAIM_EXEC_DENIED;
		str_sanitize_buf(r->out, r->outlen, out, sizeof out, 0);
		log_warn(r->cfg->name, NULL, "could not end server-side "
		    "session pid %ld (exit status %d, output \"%s\")", t->pid,
		    r->exit_status, out);
		break;
	}
	reclaim_save(r);
	/* The last queued kill is done: waiters may try again now. */
	if (reclaim_pick(r) < 0 || r->exec == RECLAIM_EXEC_DENIED)
		r->kill_wanted = 0;
}

/* The job finished (the channel is freed): act on its output. */
static void
reclaim_finish(struct reclaim *r, int64_t now)
{
	struct reclaim_proc	p;
	char			out[64];

	/* More than a line was printed: not an answer of ours. */
	if (r->overflow)
		r->job_failed = 1;
	if (r->job == RECLAIM_JOB_KILL)
		reclaim_killed(r, now);
	else if (!r->job_failed && r->exit_status == 0 &&
	    reclaim_parse_learn(r->out, r->outlen, &p) == 0)
		reclaim_learned(r, &p);
	else {
		if (r->exec != RECLAIM_EXEC_DENIED) {
			str_sanitize_buf(r->out, r->outlen, out, sizeof out, 0);
			log_warn(r->cfg->name, NULL, "cannot learn our "
			    "server-side session (exit status %d, output "
			    "\"%s\"): this account may not run commands "
			    "(restricted key or ForceCommand), or the server "
			    "has no Linux /proc; a port held by a stale "
			    "session will be freed only by the server's own "
			    "keepalive (ClientAlive)", r->exit_status, out);
		}
		r->exec = RECLAIM_EXEC_DENIED;
	}
	r->job = RECLAIM_JOB_NONE;
	free(r->cmd);
	r->cmd = NULL;
}

/* Start the next job, if any; 1 when one is running. */
static int
reclaim_next_job(struct reclaim *r, int64_t now)
{
	int	i;

	if (r->job != RECLAIM_JOB_NONE)
		return 1;
	/*
	 * Learn first, even with a refused tunnel waiting: the new
	 * session's process may be the one an earlier session learned (a
	 * server that serves all connections from one process), and then
	 * it must not be ended.
	 */
	if (r->learn_wanted) {
		r->learn_wanted = 0;
		r->job = RECLAIM_JOB_LEARN;
		r->cmd = xstrdup(RECLAIM_LEARN_CMD);
	} else if (r->kill_wanted && (i = reclaim_pick(r)) >= 0) {
		/* Never kill a record twice: take it off the list now. */
		r->target = r->prev[i];
		memmove(&r->prev[i], &r->prev[i + 1],
		    (size_t)(r->nprev - i - 1) * sizeof r->prev[0]);
		r->nprev--;
		r->job = RECLAIM_JOB_KILL;
		r->cmd = reclaim_kill_command(r->target.pid, r->target.start,
		    r->target.name);
		log_notice(r->cfg->name, NULL, "ending our stale server-side "
		    "session: %s", r->cmd);
	} else {
		/* Learning showed nothing may be ended: waiters go on. */
		if (r->kill_wanted)
			r->result = RECLAIM_RESULT_KEPT;
		r->kill_wanted = 0;
		return 0;
	}
	r->phase = RECLAIM_PHASE_OPEN;
	r->job_started_ms = now;
	r->job_failed = 0;
	r->outlen = 0;
	r->read_stderr = 0;
	r->overflow = 0;
	r->exit_status = -1;
	return 1;
}

/* Note a failed call: fatal ones end the session, others the job. */
static enum ssh_step
reclaim_call_failed(struct reclaim *r, LIBSSH2_SESSION *ss, const char *what,
    int rc)
{
	char	*why = ssherr_describe(ss, rc);

	log_debug(r->cfg->name, NULL, "stale-session command, %s: %s", what,
	    why);
	free(why);
	if (ssherr_session_fatal(rc))
		return SSH_DEAD;
	r->job_failed = 1;
	return SSH_OK;
}

/* Read the command's output (stderr is drained and dropped). */
static enum ssh_step
reclaim_read(struct reclaim *r, struct sweep *sw)
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
			if (!r->read_stderr) {
				r->read_stderr = 1;
				continue;
			}
			r->read_stderr = 0;
			return SSH_OK;
		}
		if (n > 0) {
			sw->progress = 1;
			if (!r->read_stderr && r->outlen < RECLAIM_OUT_MAX - 1)
				r->outlen += (size_t)n;
			else if (!r->read_stderr)
				r->overflow = 1;
			continue;
		}
		if (n < 0)
			return reclaim_call_failed(r, sw->ss, "read", (int)n);
		/* n == 0: end of this stream. */
		if (!r->read_stderr) {
			r->read_stderr = 1;
			continue;
		}
		if (libssh2_channel_eof(r->ch)) {
			r->exit_status = libssh2_channel_get_exit_status(r->ch);
			r->phase = RECLAIM_PHASE_CLOSE;
			return SSH_OK;
		}
		r->read_stderr = 0;
		return SSH_OK;
	}
}

/* Open the job's channel (one channel open in flight per session). */
static enum ssh_step
reclaim_open(struct reclaim *r, struct sweep *sw)
{
	enum ssh_step	 ret;
	LIBSSH2_CHANNEL	*ch;
	int		 rc;

	if (!ssh_slot_take(sw->open, r, sw->now))
		return SSH_OK;
	ch = libssh2_channel_open_session(sw->ss);
	if (ch == NULL) {
		rc = libssh2_session_last_errno(sw->ss);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return SSH_OK;
		ssh_slot_release(sw->open, r);
		ret = reclaim_call_failed(r, sw->ss, "channel open", rc);
		if (ret == SSH_OK)
			reclaim_finish(r, sw->now);
		return ret;
	}
	ssh_slot_release(sw->open, r);
	r->ch = ch;
	r->phase = RECLAIM_PHASE_EXEC;
	sw->progress = 1;
	return SSH_OK;
}

/* Start the command on the channel. */
static enum ssh_step
reclaim_exec(struct reclaim *r, struct sweep *sw)
{
	int	rc;

	rc = libssh2_channel_process_startup(r->ch, "exec", sizeof "exec" - 1,
	    r->cmd, (unsigned)strlen(r->cmd));
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return SSH_OK;
	if (rc != 0) {
		if (reclaim_call_failed(r, sw->ss, "exec", rc) == SSH_DEAD)
			return SSH_DEAD;
		r->phase = RECLAIM_PHASE_CLOSE;
	} else
		r->phase = RECLAIM_PHASE_READ;
	sw->progress = 1;
	return SSH_OK;
}

/* Free the channel (EAGAIN: its CLOSE is not answered yet), then finish. */
static void
reclaim_close(struct reclaim *r, struct sweep *sw)
{
	if (libssh2_channel_free(r->ch) == LIBSSH2_ERROR_EAGAIN)
		return;
	r->ch = NULL;
	sw->progress = 1;
	reclaim_finish(r, sw->now);
}

/* Run the learn or kill job one step further. */
enum ssh_step
reclaim_step(struct reclaim *r, struct sweep *sw)
{
	enum ssh_step	ret;

	if (!reclaim_next_job(r, sw->now))
		return SSH_OK;
	if (r->phase != RECLAIM_PHASE_CLOSE && r->phase != RECLAIM_PHASE_OPEN &&
	    sw->now - r->job_started_ms > RECLAIM_JOB_TIMEOUT_MS) {
		log_warn(r->cfg->name, NULL, "command on the server did not "
		    "finish within %ds: giving up", RECLAIM_JOB_TIMEOUT_MS / 1000);
		r->job_failed = 1;
		r->phase = RECLAIM_PHASE_CLOSE;
	}
	if (r->phase == RECLAIM_PHASE_OPEN) {
		ret = reclaim_open(r, sw);
		/* Still opening, or the job ended with the open. */
		if (r->phase == RECLAIM_PHASE_OPEN)
			return ret;
	}
	if (r->phase == RECLAIM_PHASE_EXEC && reclaim_exec(r, sw) == SSH_DEAD)
		return SSH_DEAD;
	if (r->phase == RECLAIM_PHASE_READ && reclaim_read(r, sw) == SSH_DEAD)
		return SSH_DEAD;
	if (r->phase == RECLAIM_PHASE_CLOSE)
		reclaim_close(r, sw);
	return SSH_OK;
}
