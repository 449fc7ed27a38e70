/*
 * Rule 9: the liveness probe. Opens N channels of one type, one after
 * the other, each to its answer:
 *  unknown  a type no server implements: sshd answers OPEN_FAILURE,
 *           libssh2 returns NULL with -21 CHANNEL_FAILURE and keeps
 *           nothing (1.11.1:src/channel.c:285-344);
 *  session  a session channel, freed at once when it opens (what
 *           src/probe.c does today); with MaxSessions 0 it is refused
 *           like the unknown type.
 * Either way the answer is matched by our channel id, so nothing is left
 * queued: memory is the same after each probe, and a forward_listen_ex
 * afterwards gets its own answer. The driver checks what sshd logged.
 *
 * args: KIND N EXPECT (EXPECT: "refused" or "opened")
 */
#include "t.h"

#define PROBE_TYPE	"tunnels-probe@tunnels.invalid"

int
main(int argc, char **argv)
{
	struct t		 t;
	LIBSSH2_LISTENER	*l;
	LIBSSH2_CHANNEL		*ch;
	const char		*user, *key, *kind, *type;
	int			 port, bound, rc = 0, n, i, refused = 0, opened = 0;
	int			 want_refused;
	long			 blocks = -1;
	int64_t			 deadline, t0, worst = 0;

	t_args(argc, argv, 3, &port, &user, &key);
	kind = argv[4];
	n = atoi(argv[5]);
	want_refused = strcmp(argv[6], "refused") == 0;
	type = strcmp(kind, "unknown") == 0 ? PROBE_TYPE : "session";
	t_open(&t, port, user, key);
	for (i = 0; i < n; i++) {
		deadline = t_now() + 5000;
		t0 = t_now();
		while ((ch = libssh2_channel_open_ex(t.ss, type,
		    (unsigned)strlen(type), LIBSSH2_CHANNEL_WINDOW_DEFAULT,
		    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0)) == NULL &&
		    (rc = libssh2_session_last_errno(t.ss)) ==
		    LIBSSH2_ERROR_EAGAIN && t_now() < deadline)
			t_wait(&t, 100);
		if (t_now() - t0 > worst)
			worst = t_now() - t0;
		if (ch == NULL) {
			T_CHECK(rc == LIBSSH2_ERROR_CHANNEL_FAILURE, "open %s: %d",
			    type, rc);
			refused++;
		} else {
			while ((rc = libssh2_channel_free(ch)) ==
			    LIBSSH2_ERROR_EAGAIN)
				t_wait(&t, 100);
			T_CHECK(rc == 0, "free: %d", rc);
			opened++;
		}
		if (i == 0)
			blocks = t.live_blocks;
		T_CHECK(t.live_blocks == blocks, "probe %d: %ld blocks, first "
		    "%ld", i, t.live_blocks, blocks);
	}
	T_CHECK(want_refused ? refused == n : opened == n, "refused %d opened "
	    "%d", refused, opened);
	t_fact("%d x open \"%s\": %d refused (%d \"%s\"), %d opened; memory "
	    "flat; slowest answer %lld ms", n, type, refused,
	    LIBSSH2_ERROR_CHANNEL_FAILURE, refused ? t_errmsg(&t) : "",
	    opened, (long long)worst);
	l = t_listen(&t, "127.0.0.1", 0, &bound, &rc);
	T_CHECK(l != NULL && bound > 0, "listen after probes: %d", rc);
	t_fact("forward_listen_ex afterwards: port %d", bound);
	t_close(&t);
	puts("ok");
	return 0;
}
