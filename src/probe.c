/*
 * The liveness probe. Each step makes at most one libssh2 call (open or
 * free), so a call that blocked on the send slot is the one repeated
 * first when the session retries the probe.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "probe.h"
#include "ssherr.h"

/* Ask for a channel of an unknown type; free it if it was opened. */
enum probe_step
probe_step(struct probe *p, LIBSSH2_SESSION *ss, void **open_slot,
    int *progress, const char *server)
{
	LIBSSH2_CHANNEL	*ch;
	char		*why;
	int		 rc;

	if (p->ch == NULL && (p->wanted || p->opening)) {
		/* One channel open in flight per session (libssh2 state). */
		if (*open_slot != NULL && *open_slot != p)
			return PROBE_STEP_OK;
		*open_slot = p;
		ch = libssh2_channel_open_ex(ss, PROBE_CHANNEL_TYPE,
		    sizeof PROBE_CHANNEL_TYPE - 1,
		    LIBSSH2_CHANNEL_WINDOW_DEFAULT,
		    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
		if (ch == NULL) {
			rc = libssh2_session_last_errno(ss);
			if (rc == LIBSSH2_ERROR_EAGAIN) {
				p->opening = 1;
				return ssherr_slot_busy(ss) ?
				    PROBE_STEP_BLOCKED : PROBE_STEP_OK;
			}
			p->opening = p->wanted = 0;
			*open_slot = NULL;
			*progress = 1;
			/* A refusal is an answer: the server is alive. */
			if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
				return PROBE_STEP_OK;
			why = ssherr_describe(ss, rc);
			log_info(server, NULL, "liveness probe: %s", why);
			free(why);
			return ssherr_session_fatal(rc) ? PROBE_STEP_DEAD :
			    PROBE_STEP_OK;
		}
		p->opening = p->wanted = 0;
		*open_slot = NULL;
		p->ch = ch;
		*progress = 1;
	}
	if (p->ch != NULL) {
		rc = libssh2_channel_free(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return ssherr_slot_busy(ss) ? PROBE_STEP_BLOCKED :
			    PROBE_STEP_OK;
		p->ch = NULL;
		*progress = 1;
	}
	return PROBE_STEP_OK;
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
