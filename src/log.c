/*
 * Logging. The only module with file-static state: the identity, the
 * priority threshold, whether stderr is connected to journald, and the
 * keys of the once-per-run warnings already given.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

/* How long repeats of one failure are folded into a summary. */
#define LOG_LIMIT_WINDOW_MS	(5 * 60 * 1000)
/*
 * Longest message written, in bytes: one event is one line, whatever a
 * server put into it (the texts that come from servers are cut much
 * shorter where they are received; this is the last guard).
 */
#define LOG_MSG_MAX		4096
/* Longest server or tunnel name in the context and journald fields. */
#define LOG_NAME_MAX		64
/* Once-per-run keys remembered; past this, warnings repeat instead. */
#define LOG_FIRST_MAX		1024

static const char	*log_ident = "tunnels";
static int		 log_max = LOG_PRI_INFO;
static int		 log_journal;
static char		*log_first_keys[LOG_FIRST_MAX];
static size_t		 log_first_n;

/* True when stderr is the stream systemd connected to journald. */
static int
log_stderr_is_journal(void)
{
	const char		*env = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* Set the identity and threshold; detect journald. */
void
log_init(const char *ident, int max_priority)
{
	const char	*env = getenv("TUNNELS_DEBUG");

	log_ident = ident;
	log_max = max_priority;
	if (env != NULL && *env != '\0' && strcmp(env, "0") != 0)
		log_max = LOG_PRI_DEBUG;
	log_journal = log_stderr_is_journal();
}

/* Send one structured entry to journald, with SERVER= and TUNNEL= fields. */
static void
log_write_journal(int pri, const char *server, const char *tunnel,
    const char *ctx, const char *msg)
{
	struct iovec	 iov[5];
	char		*f[5];
	int		 n = 0, i;

	f[n++] = xasprintf("MESSAGE=%s%s", ctx, msg);
	f[n++] = xasprintf("PRIORITY=%d", pri);
	f[n++] = xasprintf("SYSLOG_IDENTIFIER=%s", log_ident);
	if (server != NULL)
		f[n++] = xasprintf("SERVER=%s", server);
	if (tunnel != NULL)
		f[n++] = xasprintf("TUNNEL=%s", tunnel);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = f[i];
		iov[i].iov_len = strlen(f[i]);
	}
	sd_journal_sendv(iov, n);
	for (i = 0; i < n; i++)
		free(f[i]);
}

/*
 * Write one entry with a preformatted message. Every part is made safe
 * here, whatever the caller passed: no control character (a newline would
 * start a fake entry, an escape sequence would drive the reader's
 * terminal), bounded length.
 */
static void
log_write(int pri, const char *server, const char *tunnel,
    const char *rawmsg)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "error", "warning", "notice",
		"info", "debug"
	};
	char		 ctx[160] = "", stamp[32], msg[LOG_MSG_MAX];
	char		 sbuf[LOG_NAME_MAX], tbuf[LOG_NAME_MAX];
	struct timespec	 ts;
	struct tm	 tm;

	str_sanitize_buf(rawmsg, strlen(rawmsg), msg, sizeof msg, STR_UTF8);
	if (server != NULL)
		server = str_sanitize_buf(server, strlen(server), sbuf,
		    sizeof sbuf, STR_UTF8);
	if (tunnel != NULL)
		tunnel = str_sanitize_buf(tunnel, strlen(tunnel), tbuf,
		    sizeof tbuf, STR_UTF8);
	if (server != NULL && tunnel != NULL)
		snprintf(ctx, sizeof ctx, "tunnel %s (server %s): ", tunnel,
		    server);
	else if (server != NULL)
		snprintf(ctx, sizeof ctx, "server %s: ", server);
	else if (tunnel != NULL)
		snprintf(ctx, sizeof ctx, "tunnel %s: ", tunnel);
	if (log_journal) {
		log_write_journal(pri, server, tunnel, ctx, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s[%ld]: %s: %s%s\n", stamp,
	    ts.tv_nsec / 1000000, log_ident, (long)getpid(),
	    names[pri & 7], ctx, msg);
}

/* Log one event at priority pri for the given server/tunnel (may be NULL). */
void
log_msg(int pri, const char *server, const char *tunnel, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (pri > log_max)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_write(pri, server, tunnel, msg);
	free(msg);
}

/*
 * Log a repeating failure once, then count repeats and summarise them.
 * key identifies "the same failure" (the message itself may vary, e.g.
 * with the retry delay).
 */
void
log_limited(struct log_limit *l, int64_t now, const char *key, int pri,
    const char *server, const char *tunnel, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (l->last != NULL && strcmp(l->last, key) == 0 &&
	    now - l->window_start_ms < LOG_LIMIT_WINDOW_MS) {
		l->suppressed++;
		/* Repeats are still visible at debug level. */
		log_msg(LOG_PRI_DEBUG, server, tunnel, "%s (repeated)", msg);
		free(msg);
		return;
	}
	if (l->suppressed > 0)
		log_msg(pri, server, tunnel, "the previous failure repeated "
		    "%u more times", l->suppressed);
	free(l->last);
	l->last = xstrdup(key);
	l->suppressed = 0;
	l->window_start_ms = now;
	log_msg(pri, server, tunnel, "%s", msg);
	free(msg);
}

/* Forget the repeat state (after recovery). */
void
log_limit_reset(struct log_limit *l)
{
	free(l->last);
	memset(l, 0, sizeof *l);
}

/* 1 the first time key is seen in this process, else 0. */
int
log_first(const char *key)
{
	size_t	i;

	for (i = 0; i < log_first_n; i++)
		if (strcmp(log_first_keys[i], key) == 0)
			return 0;
	/* Full (never in practice: a few keys per server): say it again. */
	if (log_first_n < LOG_FIRST_MAX)
		log_first_keys[log_first_n++] = xstrdup(key);
	return 1;
}
