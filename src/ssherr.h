/*
 * Classification and wording of libssh2 return codes. On a dead link
 * libssh2 reports misleading codes (-23 from forward_accept, -14 from
 * forward_listen_ex), so everything that is not clearly about one channel
 * counts as fatal to the whole session.
 */
#ifndef TUNNELS_SSHERR_H
#define TUNNELS_SSHERR_H

#include <libssh2.h>

/* 1 if rc (< 0, not EAGAIN) means the SSH session itself is gone. */
static inline int
ssherr_session_fatal(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
	case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
	case LIBSSH2_ERROR_CHANNEL_WINDOW_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_PACKET_EXCEEDED:
	case LIBSSH2_ERROR_INVAL:
		return 0;
	default:
		return 1;
	}
}

/* 1 if the last call left a packet half-sent (the send slot is taken). */
static inline int
ssherr_slot_busy(LIBSSH2_SESSION *ss)
{
	return (libssh2_session_block_directions(ss) &
	    LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
}

/* libssh2's text for the last error on the session (static storage). */
static inline const char *
ssherr_text(LIBSSH2_SESSION *ss)
{
	char	*msg = NULL;
	int	 len = 0;

	libssh2_session_last_error(ss, &msg, &len, 0);
	return msg != NULL && *msg != '\0' ? msg : "unknown error";
}

/* What a libssh2 error code means for a tunnel, as a phrase. */
const char	*ssherr_meaning(int rc);
/* "<meaning> (libssh2: <its text>, error <rc>)", malloc'd. */
char		*ssherr_describe(LIBSSH2_SESSION *, int rc);

#endif
