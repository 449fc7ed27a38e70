/*
 * Logging: one line per event, naming the server and tunnel concerned.
 * Under journald (JOURNAL_STREAM matches stderr) entries are structured,
 * with SERVER= and TUNNEL= fields; otherwise plain lines on stderr.
 */
#ifndef TUNNELS_LOG_H
#define TUNNELS_LOG_H

#include <stdint.h>

/* syslog priorities */
#define LOG_PRI_ERR	3
#define LOG_PRI_WARNING	4
#define LOG_PRI_NOTICE	5
#define LOG_PRI_INFO	6
#define LOG_PRI_DEBUG	7

void	 log_init(const char *ident, int max_priority);
void	 log_msg(int pri, const char *server, const char *tunnel,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_err(s, t, ...)	log_msg(LOG_PRI_ERR, s, t, __VA_ARGS__)
#define log_warn(s, t, ...)	log_msg(LOG_PRI_WARNING, s, t, __VA_ARGS__)
#define log_notice(s, t, ...)	log_msg(LOG_PRI_NOTICE, s, t, __VA_ARGS__)
#define log_info(s, t, ...)	log_msg(LOG_PRI_INFO, s, t, __VA_ARGS__)
#define log_debug(s, t, ...)	log_msg(LOG_PRI_DEBUG, s, t, __VA_ARGS__)

/*
 * Rate limit for a repeating failure: the first occurrence is logged at
 * its priority, repeats (same key) within the window are counted and
 * summarised with the next message that gets through.
 */
struct log_limit {
	int64_t	 window_start_ms;
	unsigned suppressed;
	char	*last;
};

void	 log_limited(struct log_limit *, int64_t now_ms, const char *key,
	    int pri, const char *server, const char *tunnel, const char *fmt,
	    ...) __attribute__((format(printf, 7, 8)));
void	 log_limit_reset(struct log_limit *);

/*
 * 1 the first time key is seen in this process, else 0: for a warning
 * given once per run (per server, say) rather than on every connection.
 */
int	 log_first(const char *key);

#endif
