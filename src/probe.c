/*
 * The liveness probe: one channel open in flight at a time (the session's
 * open slot), and the free of a channel a server opened after all.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "probe.h"
#include "ssherr.h"

/* The open was answered with a failure, or failed: say what it means. */
static enum ssh_step
probe_open_failed(struct probe *p, struct sweep *sw, int rc,
    const char *server)
{
	char	*why;

	p->opening = p->wanted = 0;
	ssh_slot_release(sw->open, p);
	sw->progress = 1;
	/* A refusal is an answer: the server is alive. */
	if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
		return SSH_OK;
	why = ssherr_describe(sw->ss, rc);
	log_info(server, NULL, "liveness probe: %s", why);
	free(why);
	return ssherr_session_fatal(rc) ? SSH_DEAD : SSH_OK;
}

/* Ask for a channel of an unknown type; free it if it was opened. */
enum ssh_step
probe_step(struct probe *p, struct sweep *sw, const char *server)
{
	LIBSSH2_CHANNEL	*ch;
	int		 rc;

	if (p->ch == NULL && (p->wanted || p->opening)) {
		/* One channel open in flight per session (libssh2 state). */
		if (!ssh_slot_take(sw->open, p, sw->now))
			return SSH_OK;
		ch = libssh2_channel_open_ex(sw->ss, PROBE_CHANNEL_TYPE,
		    sizeof PROBE_CHANNEL_TYPE - 1,
		    LIBSSH2_CHANNEL_WINDOW_DEFAULT,
		    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
		if (ch == NULL) {
			rc = libssh2_session_last_errno(sw->ss);
			if (rc != LIBSSH2_ERROR_EAGAIN)
				return probe_open_failed(p, sw, rc, server);
			p->opening = 1;
			return SSH_OK;
		}
		p->opening = p->wanted = 0;
		ssh_slot_release(sw->open, p);
		p->ch = ch;
		sw->progress = 1;
	}
	if (p->ch != NULL) {
		/* EAGAIN: waiting for the server's CLOSE. */
		if (libssh2_channel_free(p->ch) == LIBSSH2_ERROR_EAGAIN)
			return SSH_OK;
		p->ch = NULL;
		sw->progress = 1;
	}
	return SSH_OK;
}

/* 1 while a probe is wanted or in flight. */
int
probe_busy(const struct probe *p)
{
	return p->ch != NULL || p->opening || p->wanted;
}

/* Forget the probe without libssh2 calls. */
void
probe_reset(struct probe *p)
{
	memset(p, 0, sizeof *p);
}
