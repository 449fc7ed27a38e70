/*
 * libssh2 errors as sentences. libssh2's own texts ("Channel not found",
 * "Unable to exchange encryption keys") say where it failed, not what
 * happened, and on a dead link they name the wrong thing altogether; every
 * message that reaches a log or the status therefore starts with what the
 * code means for us and keeps libssh2's text and code only as a detail.
 */
#include "ssherr.h"
#include "util.h"

/* What a libssh2 error code means for a tunnel, as a phrase. */
const char *
ssherr_meaning(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
		return "the connection was closed by the server or the network";
	case LIBSSH2_ERROR_SOCKET_SEND:
		return "sending to the server failed";
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		return "the server did not answer in time";
	case LIBSSH2_ERROR_BANNER_RECV:
		return "the server sent no SSH banner";
	case LIBSSH2_ERROR_KEX_FAILURE:
		return "no algorithm in common with the server";
	case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
		return "the key exchange with the server failed";
	case LIBSSH2_ERROR_HOSTKEY_INIT:
	case LIBSSH2_ERROR_HOSTKEY_SIGN:
		return "the server's host key signature did not verify";
	case LIBSSH2_ERROR_INVALID_MAC:
	case LIBSSH2_ERROR_MAC_FAILURE:
	case LIBSSH2_ERROR_DECRYPT:
		return "data from the server failed its integrity check "
		    "(corrupted in transit)";
	case LIBSSH2_ERROR_PROTO:
	case LIBSSH2_ERROR_OUT_OF_BOUNDARY:
		return "the server broke the SSH protocol, or the connection "
		    "died";
	case LIBSSH2_ERROR_CHANNEL_UNKNOWN:
		/* What forward_accept reports on a dead link. */
		return "the SSH connection is gone";
	case LIBSSH2_ERROR_CHANNEL_FAILURE:
		return "the server refused to open a channel";
	case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
	case LIBSSH2_ERROR_REQUEST_DENIED:
		return "the server refused the request";
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
		return "the channel is already closed";
	case LIBSSH2_ERROR_CHANNEL_WINDOW_EXCEEDED:
	case LIBSSH2_ERROR_CHANNEL_PACKET_EXCEEDED:
		return "the server sent more than the channel allows";
	case LIBSSH2_ERROR_ALLOC:
		return "out of memory";
	case LIBSSH2_ERROR_BAD_USE:
		return "internal error: a libssh2 call out of order";
	default:
		return "SSH error";
	}
}

/* "<meaning> (libssh2: <its text>, error <rc>)", malloc'd. */
char *
ssherr_describe(LIBSSH2_SESSION *ss, int rc)
{
	return xasprintf("%s (libssh2: %s, error %d)", ssherr_meaning(rc),
	    ss != NULL ? ssherr_text(ss) : "no session", rc);
}
