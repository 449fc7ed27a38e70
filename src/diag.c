/*
 * tunnels check --connect: what a user runs when something does not work.
 *
 * Each server is diagnosed step by step the way the daemon connects to it
 * (the same resolver, the same algorithm and host key preferences, the
 * same authentication, forward requests and reclaim command), one line
 * per step starting with a check mark or a cross, and under every cross a
 * line with the fix. A command line tool, so the steps simply run one
 * after another; but every wait has a deadline (the server's
 * connect_timeout, per step): libssh2 runs non-blocking and we poll the
 * socket ourselves. Everything the server sends is bounded and sanitised
 * before it is printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>

#include "addr.h"
#include "algos.h"
#include "config.h"
#include "control.h"
#include "diag.h"
#include "hostkey.h"
#include "json.h"
#include "kexinit.h"
#include "keyfile.h"
#include "loop.h"
#include "reclaim.h"
#include "resolve.h"
#include "sshmem.h"
#include "ssherr.h"
#include "util.h"

#define DIAG_OK			"\xe2\x9c\x93"	/* U+2713 check mark */
#define DIAG_FAIL		"\xe2\x9c\x97"	/* U+2717 ballot x */
/* How long the running daemon may take to send its status. */
#define DIAG_STATUS_TIMEOUT_MS	2000
/* What we keep of an exec's output (the rest is read and dropped). */
#define DIAG_EXEC_OUT_MAX	256
/* Longest server text we print (banner, disconnect reason, output). */
#define DIAG_SHOW_MAX		160
/* Saying goodbye may take this long at most. */
#define DIAG_BYE_MS		1000
/* Upper bound on the libssh2_session_free() retries after shutdown(). */
#define DIAG_FREE_TRIES		64

struct diag {
	const struct config		*cfg;
	struct loop			*loop;
	struct resolver			*resolver;
	struct json			*status;	/* the daemon's, or NULL */
	char				*status_error;	/* why not */
	int				 status_asked;

	/* The server being diagnosed. */
	const struct config_server	*srv;
	size_t				 index;
	int				 problems;
	struct resolve_result		 addrs;
	int				 fd;
	char				 address[ADDR_TEXT_MAX];
	LIBSSH2_SESSION			*ss;
	struct sshmem			 mem;
	struct kexinit			 kex;	/* the server's cleartext hello */
	char				*hostkey_offer;	/* hostkey_prepare's */
	int				 handshaking;
	int				 handshaken;
	int				 peer_closed;
	char				*disconnect_msg;
	int64_t				 deadline;	/* of the current step */
};

/* The result of one name lookup on the loop. */
struct diag_lookup {
	struct loop		*loop;
	int			 done;
	struct resolve_result	 res;
	char			*error;
};

/* Print a step that passed. */
static void __attribute__((format(printf, 2, 3)))
diag_ok(struct diag *d, const char *fmt, ...)
{
	va_list	ap;

	(void)d;
	printf("  " DIAG_OK " ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Print a step that failed, and the fix (may be NULL) under it. */
static void __attribute__((format(printf, 3, 4)))
diag_fail(struct diag *d, const char *fix, const char *fmt, ...)
{
	va_list	ap;

	d->problems++;
	printf("  " DIAG_FAIL " ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (fix != NULL)
		printf("    fix: %s\n", fix);
	fflush(stdout);
}

/* A duration for messages: "10s", "2.5s", "300ms". */
static void
diag_fmt_ms(int64_t ms, char *out, size_t len)
{
	if (ms < 1000)
		snprintf(out, len, "%lldms", (long long)ms);
	else if (ms % 1000 == 0)
		snprintf(out, len, "%llds", (long long)ms / 1000);
	else
		snprintf(out, len, "%.1fs", (double)ms / 1000);
}

/* strerror() with a lower-case first letter, as the rest of a line. */
static void
diag_fmt_errno(int err, char *out, size_t len)
{
	snprintf(out, len, "%s", strerror(err));
	if (out[0] >= 'A' && out[0] <= 'Z' && out[1] >= 'a' && out[1] <= 'z')
		out[0] = (char)(out[0] - 'A' + 'a');
}

/* Start a step: it has connect_timeout from now. */
static void
diag_step_start(struct diag *d)
{
	d->deadline = time_now_ms() + d->srv->connect_timeout_ms;
}

/* The step's timeout as text ("10s"). */
static void
diag_fmt_timeout(const struct diag *d, char *out, size_t len)
{
	diag_fmt_ms(d->srv->connect_timeout_ms, out, len);
}

/*
 * Wait until the socket is ready for what libssh2 waits on. Returns -1
 * once the step's deadline has passed (the caller gives up).
 */
static int
diag_wait(struct diag *d)
{
	struct pollfd	pfd;
	int64_t		left = d->deadline - time_now_ms();
	int		dirs;

	if (left <= 0)
		return -1;
	dirs = libssh2_session_block_directions(d->ss);
	pfd.fd = d->fd;
	pfd.events = 0;
	pfd.revents = 0;
	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (pfd.events == 0)
		pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)MIN(left, 60000)) == -1 && errno != EINTR)
		return -1;
	return 0;
}

/* Repeat a non-blocking libssh2 call until done or the deadline. */
#define DIAG_CALL(d, rc, call) do {					\
	(rc) = (call);							\
} while ((rc) == LIBSSH2_ERROR_EAGAIN && diag_wait(d) == 0)

/* libssh2 recv hook: keep the cleartext hello, notice the end. */
static ssize_t
diag_recv(libssh2_socket_t fd, void *buf, size_t len, int flags,
    void **abstract)
{
	struct diag	*d = *abstract;
	ssize_t		 n;

	n = recv(fd, buf, len, flags);
	if (n == -1)
		return -errno;
	if (n == 0)
		d->peer_closed = 1;
	else if (d->handshaking)
		(void)kexinit_feed(&d->kex, buf, (size_t)n);
	return n;
}

/* libssh2 disconnect hook: keep the server's reason (sanitised). */
static void
diag_on_disconnect(LIBSSH2_SESSION *ss, int reason, const char *msg,
    int msglen, const char *lang, int langlen, void **abstract)
{
	struct diag	*d = *abstract;
	char		*text;

	(void)ss;
	(void)lang;
	(void)langlen;
	text = str_sanitize(msg ? msg : "", msg && msglen > 0 ?
	    (size_t)msglen : 0, DIAG_SHOW_MAX);
	free(d->disconnect_msg);
	d->disconnect_msg = xasprintf("the server disconnected (reason %d): "
	    "%s", reason, text);
	free(text);
}

/* libssh2 allocation hooks: the session's own pool (see sshmem.c). */
static void *
diag_mem_alloc(size_t n, void **abstract)
{
	struct diag	*d = *abstract;

	return sshmem_alloc(&d->mem, n);
}

/* libssh2 realloc hook. */
static void *
diag_mem_realloc(void *p, size_t n, void **abstract)
{
	struct diag	*d = *abstract;

	return sshmem_realloc(&d->mem, p, n);
}

/* libssh2 free hook. */
static void
diag_mem_free(void *p, void **abstract)
{
	struct diag	*d = *abstract;

	sshmem_free(&d->mem, p);
}

/* Name lookup finished. */
static void
diag_resolved(void *arg, const struct resolve_result *res, const char *error)
{
	struct diag_lookup	*lk = arg;

	lk->done = 1;
	if (res != NULL)
		lk->res = *res;
	else
		lk->error = xstrdup(error != NULL ? error : "no address");
	loop_stop(lk->loop);
}

/* Name lookup deadline. */
static void
diag_lookup_timeout(void *arg)
{
	struct diag_lookup	*lk = arg;

	loop_stop(lk->loop);
}

/* Format an address without its port ("192.0.2.7", "2001:db8::7"). */
static void
diag_fmt_host(const struct sockaddr_storage *sa, socklen_t len, char *out,
    size_t outlen)
{
	if (getnameinfo((const struct sockaddr *)sa, len, out, outlen, NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(out, outlen, "?");
}

/* Format an address with its port ("192.0.2.7:22", "[::1]:22"). */
static void
diag_fmt_addr(const struct sockaddr_storage *sa, socklen_t len, char *out,
    size_t outlen)
{
	char	host[NI_MAXHOST];

	diag_fmt_host(sa, len, host, sizeof host);
	snprintf(out, outlen, sa->ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
	    host, ntohs(sa->ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)sa)->sin6_port :
	    ((const struct sockaddr_in *)sa)->sin_port));
}

/* Step 1: resolve the host name with the daemon's resolver. */
static int
diag_resolve(struct diag *d)
{
	const struct config_server	*srv = d->srv;
	struct diag_lookup		 lk;
	struct loop_timer		 timer;
	struct resolve_req		*rq;
	struct buf			 b;
	char				 host[NI_MAXHOST], tmo[16], *fix;
	int				 i;

	memset(&lk, 0, sizeof lk);
	lk.loop = d->loop;
	loop_timer_init(&timer, diag_lookup_timeout, &lk);
	loop_timer_at(d->loop, &timer, time_now_ms() + srv->connect_timeout_ms);
	rq = resolve_start(d->resolver, srv->host, srv->port, diag_resolved,
	    &lk);
	if (loop_run(d->loop) == -1)
		lk.error = xasprintf("the event loop failed: %s",
		    strerror(errno));
	loop_timer_stop(d->loop, &timer);
	if (!lk.done) {
		resolve_cancel(rq);
		if (lk.error == NULL) {
			diag_fmt_timeout(d, tmo, sizeof tmo);
			lk.error = xasprintf("no answer within %s", tmo);
		}
	}
	if (lk.error != NULL || lk.res.n == 0) {
		fix = xasprintf("check the host name of server \"%s\" in %s, "
		    "and this machine's DNS (getent hosts %s)", srv->name,
		    d->cfg->path, srv->host);
		diag_fail(d, fix, "resolve %s: %s", srv->host,
		    lk.error != NULL ? lk.error : "no address");
		free(fix);
		free(lk.error);
		return -1;
	}
	d->addrs = lk.res;
	buf_init(&b);
	for (i = 0; i < d->addrs.n; i++) {
		diag_fmt_host(&d->addrs.addrs[i], d->addrs.lens[i], host,
		    sizeof host);
		buf_printf(&b, "%s%s", i > 0 ? ", " : "", host);
	}
	diag_ok(d, "resolve %s: %s", srv->host, buf_cstr(&b));
	buf_clear(&b);
	return 0;
}

/* Report one address's TCP connect; the fix depends on the error. */
static void
diag_tcp_report(struct diag *d, const char *addr, int64_t took, int err,
    int timed_out)
{
	char		 text[128], *fix;
	const char	*why;

	if (took >= 0) {
		diag_fmt_ms(took, text, sizeof text);
		diag_ok(d, "TCP %s: connected in %s", addr, text);
		return;
	}
	if (timed_out) {
		diag_fmt_timeout(d, text, sizeof text);
		why = "nothing answered: a firewall drops the packets, the "
		    "address or port is wrong, or the host is down";
		diag_fail(d, why, "TCP %s: timed out after %s", addr, text);
		return;
	}
	diag_fmt_errno(err, text, sizeof text);
	switch (err) {
	case ECONNREFUSED:
		fix = xasprintf("nothing listens on port %d there: is sshd "
		    "running, and is port: right for server \"%s\" in %s?",
		    d->srv->port, d->srv->name, d->cfg->path);
		break;
	case ENETUNREACH:
	case EHOSTUNREACH:
		fix = xstrdup("this machine has no route to that address (no "
		    "IPv6 connectivity? a VPN or a firewall?)");
		break;
	default:
		fix = xstrdup("check the network between this machine and the "
		    "server");
		break;
	}
	diag_fail(d, fix, "TCP %s: %s", addr, text);
	free(fix);
}

/*
 * Step 2: connect to every address at once, each with its own deadline;
 * report each, and keep the first (in resolver order) that connected.
 */
static int
diag_tcp(struct diag *d)
{
	struct pollfd	 pfd[RESOLVE_MAX_ADDRS];
	int		 fds[RESOLVE_MAX_ADDRS], errs[RESOLVE_MAX_ADDRS];
	int		 map[RESOLVE_MAX_ADDRS];
	int64_t		 took[RESOLVE_MAX_ADDRS], start, left;
	char		 addr[ADDR_TEXT_MAX];
	socklen_t	 len;
	int		 i, n = d->addrs.n, m, pending = 0, err, fd;

	start = time_now_ms();
	for (i = 0; i < n; i++) {
		took[i] = -1;
		errs[i] = 0;
		fds[i] = fd = socket(d->addrs.addrs[i].ss_family, SOCK_STREAM |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			errs[i] = errno;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&d->addrs.addrs[i],
		    d->addrs.lens[i]) == 0)
			took[i] = time_now_ms() - start;
		else if (errno == EINPROGRESS)
			pending++;
		else {
			errs[i] = errno;
			close(fd);
			fds[i] = -1;
		}
	}
	while (pending > 0 &&
	    (left = start + d->srv->connect_timeout_ms - time_now_ms()) > 0) {
		for (i = 0, m = 0; i < n; i++)
			if (fds[i] != -1 && took[i] < 0) {
				pfd[m].fd = fds[i];
				pfd[m].events = POLLOUT;
				pfd[m].revents = 0;
				map[m++] = i;
			}
		if (poll(pfd, (nfds_t)m, (int)MIN(left, 60000)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < m; i++) {
			if (pfd[i].revents == 0)
				continue;
			err = 0;
			len = sizeof err;
			if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == -1)
				err = errno;
			pending--;
			if (err == 0) {
				took[map[i]] = time_now_ms() - start;
				continue;
			}
			errs[map[i]] = err;
			close(fds[map[i]]);
			fds[map[i]] = -1;
		}
	}
	d->fd = -1;
	for (i = 0; i < n; i++) {
		diag_fmt_addr(&d->addrs.addrs[i], d->addrs.lens[i], addr,
		    sizeof addr);
		/* Still pending: the deadline passed. */
		diag_tcp_report(d, addr, took[i], errs[i], fds[i] != -1 &&
		    took[i] < 0);
		if (fds[i] == -1)
			continue;
		if (took[i] >= 0 && d->fd == -1) {
			d->fd = fds[i];
			snprintf(d->address, sizeof d->address, "%s", addr);
		} else
			close(fds[i]);
	}
	return d->fd == -1 ? -1 : 0;
}

/*
 * Create the libssh2 session with exactly the daemon's preferences
 * (algos_apply, hostkey_prepare). A failure here is reported as the
 * step it belongs to.
 */
static int
diag_session_new(struct diag *d)
{
	char	*cause = NULL;

	d->ss = libssh2_session_init_ex(diag_mem_alloc, diag_mem_free,
	    diag_mem_realloc, d);
	if (d->ss == NULL) {
		diag_fail(d, NULL, "SSH: cannot create a libssh2 session (out "
		    "of memory)");
		return -1;
	}
	libssh2_session_set_blocking(d->ss, 0);
	libssh2_session_callback_set2(d->ss, LIBSSH2_CALLBACK_RECV,
	    (libssh2_cb_generic *)diag_recv);
	libssh2_session_callback_set2(d->ss, LIBSSH2_CALLBACK_DISCONNECT,
	    (libssh2_cb_generic *)diag_on_disconnect);
	libssh2_session_banner_set(d->ss, "SSH-2.0-tunnels");
	if (algos_apply(d->ss, &cause) == -1) {
		diag_fail(d, "build tunnels with libssh2 1.11.1 or newer (see "
		    "tunnels --version)", "algorithms: %s", cause);
		free(cause);
		return -1;
	}
	if (hostkey_prepare(d->ss, d->srv, &d->hostkey_offer,
	    &cause) == -1) {
		diag_fail(d, "fix known_hosts or host_key of this server (see "
		    "tunnels.yaml(5))", "host key: %s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

/* Step 3: the server's identification string, or why there is none. */
static int
diag_banner(struct diag *d, int rc)
{
	const char	*pre = d->kex.pre_banner, *fix;
	char		*text, tmo[16], *why;

	if (d->kex.banner != NULL) {
		diag_ok(d, "banner: %s", d->kex.banner);
		return 0;
	}
	if (rc == 0 && (pre = libssh2_session_banner_get(d->ss)) != NULL) {
		text = str_sanitize(pre, strlen(pre), DIAG_SHOW_MAX);
		diag_ok(d, "banner: %s", text);
		free(text);
		return 0;
	}
	pre = d->kex.pre_banner;
	if (pre != NULL && strstr(pre, "MaxStartups") != NULL)
		diag_fail(d, "too many unauthenticated connections to the "
		    "server right now (sshd's MaxStartups): try again, or raise "
		    "MaxStartups", "banner: the server answered \"%s\" instead "
		    "of an SSH banner", pre);
	else if (pre != NULL) {
		why = xasprintf("is port %d of %s an SSH server? (port: of "
		    "server \"%s\" in %s)", d->srv->port, d->srv->host,
		    d->srv->name, d->cfg->path);
		diag_fail(d, why, "banner: the server answered \"%s\" instead "
		    "of an SSH banner", pre);
		free(why);
	} else if (rc == LIBSSH2_ERROR_EAGAIN) {
		diag_fmt_timeout(d, tmo, sizeof tmo);
		diag_fail(d, "is this port an SSH server, and is sshd alive? (a "
		    "hung sshd, or a proxy or firewall that accepts connections "
		    "and holds them)", "banner: no SSH banner within %s: the "
		    "server accepted the connection but sent nothing", tmo);
	} else if (d->peer_closed || rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
	    rc == LIBSSH2_ERROR_SOCKET_RECV) {
		fix = "too many unauthenticated connections (sshd's "
		    "MaxStartups), or a TCP wrapper or firewall refusing this "
		    "machine: see the server's sshd log";
		diag_fail(d, fix, "banner: the server closed the connection "
		    "before sending its SSH banner");
	} else {
		why = ssherr_describe(d->ss, rc);
		diag_fail(d, "see the server's sshd log", "banner: %s", why);
		free(why);
	}
	return -1;
}

/* The sshd_config directive for the kind a mismatch sentence names. */
static const char *
diag_directive(const char *why)
{
	if (strncmp(why, "no common key exchange", 22) == 0)
		return "KexAlgorithms";
	if (strncmp(why, "no common host key", 18) == 0)
		return "HostKeyAlgorithms (and a HostKey of that type)";
	if (strncmp(why, "no common cipher", 16) == 0)
		return "Ciphers";
	return "MACs";
}

/* A negotiated method's name, or "?". */
static const char *
diag_method(struct diag *d, int method)
{
	const char	*name = libssh2_session_methods(d->ss, method);

	return name != NULL ? name : "?";
}

/* Report what was negotiated, and any last-resort algorithm in it. */
static void
diag_algorithms_chosen(struct diag *d)
{
	static const int	 methods[] = {
		LIBSSH2_METHOD_KEX, LIBSSH2_METHOD_HOSTKEY,
		LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC,
		LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC
	};
	const char		*c_cs, *c_sc, *m_cs, *m_sc, *name;
	char			 cipher[128], mac[128];
	struct buf		 weak;
	size_t			 i;

	c_cs = diag_method(d, LIBSSH2_METHOD_CRYPT_CS);
	c_sc = diag_method(d, LIBSSH2_METHOD_CRYPT_SC);
	m_cs = diag_method(d, LIBSSH2_METHOD_MAC_CS);
	m_sc = diag_method(d, LIBSSH2_METHOD_MAC_SC);
	if (strcmp(c_cs, c_sc) == 0)
		snprintf(cipher, sizeof cipher, "%s", c_cs);
	else
		snprintf(cipher, sizeof cipher, "%s (out) %s (in)", c_cs, c_sc);
	/* libssh2's display name for the MAC that AES-GCM carries. */
	if (strcmp(m_cs, "INTEGRATED-AES-GCM") == 0 && strcmp(m_cs, m_sc) == 0)
		snprintf(mac, sizeof mac, "built into the cipher");
	else if (strcmp(m_cs, m_sc) == 0)
		snprintf(mac, sizeof mac, "%s", m_cs);
	else
		snprintf(mac, sizeof mac, "%s (out) %s (in)", m_cs, m_sc);
	diag_ok(d, "algorithms: key exchange %s, host key %s, cipher %s, "
	    "MAC %s", diag_method(d, LIBSSH2_METHOD_KEX),
	    diag_method(d, LIBSSH2_METHOD_HOSTKEY), cipher, mac);
	buf_init(&weak);
	for (i = 0; i < ARRAY_LEN(methods); i++) {
		name = libssh2_session_methods(d->ss, methods[i]);
		if (name != NULL && algos_weak(name) &&
		    strstr(buf_cstr(&weak), name) == NULL)
			buf_printf(&weak, "%s%s", weak.len ? ", " : "", name);
	}
	if (weak.len > 0) {
		printf("    warning: %s: weak (SHA-1 or CBC), used only because "
		    "the server offers nothing stronger; update the server's "
		    "SSH configuration\n", buf_cstr(&weak));
		fflush(stdout);
	}
	buf_clear(&weak);
}

/* Step 4: the algorithms chosen, or why nothing could be agreed. */
static int
diag_algorithms(struct diag *d, int rc)
{
	char	*why, *fix, tmo[16];

	if (rc == 0) {
		diag_algorithms_chosen(d);
		return 0;
	}
	/* The host key list offered is hostkey_prepare's, as the daemon's. */
	if ((why = algos_mismatch(&d->kex, d->hostkey_offer)) != NULL) {
		if (strncmp(why, "no common host key", 18) == 0 &&
		    strstr(why, "(the key types") != NULL)
			/* Narrowed to what known_hosts holds for it. */
			fix = xasprintf("the server's host key types changed? "
			    "compare ssh-keyscan -p %d %s with %s",
			    d->srv->port, d->srv->host,
			    d->srv->known_hosts != NULL ?
			    d->srv->known_hosts : "host_key");
		else
			fix = xasprintf("allow one of tunnels' algorithms in "
			    "the server's sshd_config (%s), then reload sshd",
			    diag_directive(why));
		diag_fail(d, fix, "algorithms: %s", why);
		free(fix);
		free(why);
	} else if (rc == LIBSSH2_ERROR_EAGAIN) {
		diag_fmt_timeout(d, tmo, sizeof tmo);
		diag_fail(d, "the server or the network stalls: see the "
		    "server's sshd log", "algorithms: the key exchange did not "
		    "finish within %s", tmo);
	} else if (d->disconnect_msg != NULL) {
		diag_fail(d, "see the server's sshd log", "algorithms: key "
		    "exchange failed: %s", d->disconnect_msg);
	} else {
		why = ssherr_describe(d->ss, rc);
		diag_fail(d, "see the server's sshd log", "algorithms: key "
		    "exchange failed: %s", why);
		free(why);
	}
	return -1;
}

/* Step 5: the host key, checked as the daemon checks it. */
static int
diag_hostkey(struct diag *d)
{
	const struct config_server	*srv = d->srv;
	char				*cause = NULL, *desc, *fix;

	desc = hostkey_describe(d->ss);
	if (hostkey_verify(d->ss, srv, &cause) == 0) {
		if (srv->host_key != NULL)
			diag_ok(d, "host key: %s, the pinned host_key", desc);
		else
			diag_ok(d, "host key: %s, known in %s", desc,
			    srv->known_hosts);
		free(desc);
		return 0;
	}
	if (srv->host_key != NULL)
		fix = xasprintf("compare that fingerprint with the server's "
		    "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub there); if the "
		    "server's key really changed, put it in host_key of server "
		    "\"%s\" in %s", srv->name, d->cfg->path);
	else
		fix = xasprintf("compare that fingerprint with the server's "
		    "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub there); if it "
		    "is the server's, remove any old line for it from %s and "
		    "run: ssh-keyscan -p %d %s >> %s", srv->known_hosts,
		    srv->port, srv->host, srv->known_hosts);
	/* The verdict should name the fingerprint; make sure it does. */
	if (strstr(cause, "SHA256:") == NULL)
		diag_fail(d, fix, "host key: %s (the server offered %s)", cause,
		    desc);
	else
		diag_fail(d, fix, "host key: %s", cause);
	free(fix);
	free(cause);
	free(desc);
	return -1;
}

/* Step 6: authenticate as the daemon does, with its wording. */
static int
diag_auth(struct diag *d)
{
	const struct config_server	*srv = d->srv;
	char				*pass = NULL, *cause = NULL, *fix;
	char				 tmo[16];
	int				 rc;

	if (srv->passphrase_file != NULL &&
	    (pass = keyfile_read_passphrase(srv->passphrase_file, &cause)) ==
	    NULL) {
		diag_fail(d, "make passphrase_file readable by this user",
		    "authentication: %s", cause);
		free(cause);
		return -1;
	}
	diag_step_start(d);
	DIAG_CALL(d, rc, libssh2_userauth_publickey_fromfile_ex(d->ss,
	    srv->user, (unsigned)strlen(srv->user), NULL, srv->identity, pass));
	if (pass != NULL) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	if (rc == 0) {
		diag_ok(d, "authentication: user \"%s\" accepted %s", srv->user,
		    srv->identity);
		return 0;
	}
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		diag_fmt_timeout(d, tmo, sizeof tmo);
		diag_fail(d, "the server is slow to check keys (an "
		    "AuthorizedKeysCommand?) or overloaded: see its sshd log",
		    "authentication: no answer within %s", tmo);
		return -1;
	}
	/* A connection that ends during authentication is not a refusal. */
	if (d->peer_closed || d->disconnect_msg != NULL) {
		diag_fail(d, "see the server's sshd log (LoginGraceTime, a slow "
		    "AuthorizedKeysCommand)", "authentication: the server "
		    "closed the connection during authentication, before "
		    "accepting or refusing the key%s%s",
		    d->disconnect_msg ? ": " : "",
		    d->disconnect_msg ? d->disconnect_msg : "");
		return -1;
	}
	switch (rc) {
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		fix = xasprintf("add the public key of %s to the authorized_keys "
		    "of \"%s\" on the server (tunnels server-setup --server %s "
		    "prints the line)", srv->identity, srv->user, srv->name);
		diag_fail(d, fix, "authentication refused: the server does not "
		    "accept the key %s for user \"%s\" (libssh2: %s, error %d)",
		    srv->identity, srv->user, ssherr_text(d->ss), rc);
		free(fix);
		break;
	case LIBSSH2_ERROR_FILE:
		/* libssh2 reports a wrong passphrase as a file error. */
		diag_fail(d, "check passphrase_file, or the key's format "
		    "(ssh-keygen -y -f KEY reads it)", "authentication: cannot "
		    "use identity %s: %s (wrong passphrase, or an unsupported "
		    "key format)", srv->identity, ssherr_text(d->ss));
		break;
	default:
		cause = ssherr_describe(d->ss, rc);
		diag_fail(d, "see the server's sshd log", "authentication: %s",
		    cause);
		free(cause);
		break;
	}
	return -1;
}

/* Ask the running daemon for its status, once per run. */
static const struct json *
diag_daemon_status(struct diag *d)
{
	char	*text = NULL, *cause = NULL;

	if (d->status_asked)
		return d->status;
	d->status_asked = 1;
	if (control_query(d->cfg->control, DIAG_STATUS_TIMEOUT_MS, &text,
	    &cause) == -1) {
		d->status_error = cause;
		return NULL;
	}
	if ((d->status = json_parse(text, &cause)) == NULL) {
		d->status_error = xasprintf("bad answer from the daemon on %s: "
		    "%s", d->cfg->control, cause);
		free(cause);
	}
	free(text);
	return d->status;
}

/*
 * The pid of the running daemon when it holds the listener on remote (a
 * tunnel of this server is up with that remote), else 0.
 */
static long
diag_daemon_holds(struct diag *d, const char *remote)
{
	const struct json	*st = diag_daemon_status(d), *tunnels, *o;
	const char		*server, *rem, *state;
	size_t			 i;

	if (st == NULL || (tunnels = json_get(st, "tunnels")) == NULL)
		return 0;
	for (i = 0; i < tunnels->nkids; i++) {
		o = &tunnels->kids[i];
		server = json_get_str(o, "server");
		rem = json_get_str(o, "remote");
		state = json_get_str(o, "state");
		if (server != NULL && rem != NULL && state != NULL &&
		    strcmp(server, d->srv->name) == 0 &&
		    strcmp(rem, remote) == 0 && strcmp(state, "up") == 0)
			return (long)json_get_num(st, "pid", 0);
	}
	return 0;
}

/*
 * Step 7, one tunnel: ask for its remote listener and cancel it at once.
 * Returns -1 when the session is no longer usable.
 */
static int
diag_forward(struct diag *d, const struct config_tunnel *t)
{
	LIBSSH2_LISTENER	*l;
	char			 remote[ADDR_TEXT_MAX], tmo[16], *why, *fix;
	char			 low[64];
	long			 pid;
	int			 rc, bound = 0;

	addr_format(&t->remote, remote, sizeof remote);
	diag_step_start(d);
	do {
		l = libssh2_channel_forward_listen_ex(d->ss, t->remote.host,
		    t->remote.port, &bound, 1);
		rc = l != NULL ? 0 : libssh2_session_last_errno(d->ss);
	} while (rc == LIBSSH2_ERROR_EAGAIN && diag_wait(d) == 0);
	if (l != NULL) {
		DIAG_CALL(d, rc, libssh2_channel_forward_cancel(l));
		if (rc != 0) {
			why = ssherr_describe(d->ss, rc);
			diag_fail(d, "see the server's sshd log", "forward %s: "
			    "listening on %s worked, cancelling it failed: %s",
			    t->name, remote, why);
			free(why);
			return -1;
		}
		if (t->remote.port == 0)
			diag_ok(d, "forward %s: the server let us listen on %s "
			    "(it allocated port %d; trial, cancelled at once)",
			    t->name, remote, bound);
		else
			diag_ok(d, "forward %s: the server let us listen on %s "
			    "(trial, cancelled at once)", t->name, remote);
		return 0;
	}
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		diag_fmt_timeout(d, tmo, sizeof tmo);
		diag_fail(d, "the server or the network stalls: see the "
		    "server's sshd log", "forward %s: no answer to the request "
		    "to listen on %s within %s", t->name, remote, tmo);
		return -1;
	}
	if (rc != LIBSSH2_ERROR_REQUEST_DENIED) {
		why = ssherr_describe(d->ss, rc);
		diag_fail(d, "see the server's sshd log", "forward %s: %s",
		    t->name, why);
		free(why);
		return -1;
	}
	if ((pid = diag_daemon_holds(d, remote)) > 0) {
		diag_ok(d, "forward %s: %s is held by the running tunnels daemon "
		    "(pid %ld)", t->name, remote, pid);
		return 0;
	}
	low[0] = '\0';
	if (t->remote.port > 0 && t->remote.port < 1024)
		snprintf(low, sizeof low, "port %d is below 1024 (only root "
		    "may listen there), ", t->remote.port);
	/*
	 * A daemon we could not ask (its socket is there, but not for us)
	 * may be the holder: say so rather than blame the server.
	 */
	if (d->status == NULL && d->status_error != NULL &&
	    access(d->cfg->control, F_OK) == 0 &&
	    access(d->cfg->control, W_OK) == -1)
		fix = xasprintf("the running daemon could not be asked whether "
		    "it holds the port (%s): run this as the daemon's user; "
		    "else tunnels server-setup --server %s prints what the "
		    "server needs", d->status_error, d->srv->name);
	else
		fix = xasprintf("tunnels server-setup --server %s prints what "
		    "the server needs; ss -ltn on the server shows whether the "
		    "port is taken", d->srv->name);
	diag_fail(d, fix, "forward %s: the server refused to listen on %s: "
	    "%sPermitListen or permitlisten= in authorized_keys does not "
	    "allow it, AllowTcpForwarding is off, or another program or a "
	    "stale session on the server holds the port", t->name, remote,
	    low);
	free(fix);
	return 0;
}

/* Step 7: a trial forward for every tunnel of the server. */
static int
diag_forwards(struct diag *d)
{
	size_t	i, n = 0;

	for (i = 0; i < d->cfg->n_tunnels; i++) {
		if (d->cfg->tunnels[i].server_index != d->index)
			continue;
		n++;
		if (diag_forward(d, &d->cfg->tunnels[i]) == -1)
			return -1;
	}
	if (n == 0)
		diag_ok(d, "forwards: no tunnel uses this server");
	return 0;
}

/*
 * Run command on an exec channel: its stdout (at most outlen - 1 bytes
 * kept, NUL-terminated) and exit status. 0; or -1 with *cause, and
 * *refused set when the server turned the channel or the command down
 * (rather than the connection failing or the deadline passing).
 */
static int
diag_exec_run(struct diag *d, const char *cmd, char *out, size_t outlen,
    int *status, int *refused, char **cause)
{
	LIBSSH2_CHANNEL	*ch;
	char		 scratch[1024], tmo[16];
	size_t		 got = 0, take;
	ssize_t		 n, e;
	int		 rc, ret = -1;

	*status = -1;
	*refused = 0;
	out[0] = '\0';
	diag_fmt_timeout(d, tmo, sizeof tmo);
	do {
		ch = libssh2_channel_open_session(d->ss);
		rc = ch != NULL ? 0 : libssh2_session_last_errno(d->ss);
	} while (rc == LIBSSH2_ERROR_EAGAIN && diag_wait(d) == 0);
	if (ch == NULL) {
		*refused = rc != LIBSSH2_ERROR_EAGAIN &&
		    !ssherr_session_fatal(rc);
		*cause = rc == LIBSSH2_ERROR_EAGAIN ? xasprintf("no session "
		    "channel within %s", tmo) : ssherr_describe(d->ss, rc);
		return -1;
	}
	DIAG_CALL(d, rc, libssh2_channel_process_startup(ch, "exec",
	    sizeof "exec" - 1, cmd, (unsigned)strlen(cmd)));
	if (rc != 0) {
		*refused = rc != LIBSSH2_ERROR_EAGAIN &&
		    !ssherr_session_fatal(rc);
		*cause = rc == LIBSSH2_ERROR_EAGAIN ? xasprintf("no answer to "
		    "the exec request within %s", tmo) :
		    ssherr_describe(d->ss, rc);
		goto out;
	}
	/* Until EOF: keep the start of stdout, drop the rest and stderr. */
	while (!libssh2_channel_eof(ch)) {
		n = libssh2_channel_read(ch, scratch, sizeof scratch);
		if (n > 0) {
			take = MIN((size_t)n, outlen - 1 - got);
			memcpy(out + got, scratch, take);
			got += take;
			continue;
		}
		e = libssh2_channel_read_stderr(ch, scratch, sizeof scratch);
		if (e > 0)
			continue;
		if ((n < 0 && n != LIBSSH2_ERROR_EAGAIN) ||
		    (e < 0 && e != LIBSSH2_ERROR_EAGAIN)) {
			*cause = ssherr_describe(d->ss, (int)(n < 0 &&
			    n != LIBSSH2_ERROR_EAGAIN ? n : e));
			goto out;
		}
		if (diag_wait(d) == -1) {
			/* The daemon gives up on such a command too. */
			*refused = 1;
			*cause = xasprintf("the command did not finish within "
			    "%s, a ForceCommand that never ends?", tmo);
			goto out;
		}
	}
	out[got] = '\0';
	/* The exit status may follow EOF: wait for the channel's close. */
	DIAG_CALL(d, rc, libssh2_channel_close(ch));
	if (rc == 0)
		DIAG_CALL(d, rc, libssh2_channel_wait_closed(ch));
	*status = libssh2_channel_get_exit_status(ch);
	ret = 0;
out:
	DIAG_CALL(d, rc, libssh2_channel_free(ch));
	return ret;
}

/* Step 8: the exec the stale-port reclaim needs, as the daemon runs it. */
static int
diag_exec(struct diag *d)
{
	static const char	 fix[] = "allow commands for this key (the "
	    "authorized_keys line tunnels server-setup prints, without "
	    "command=), or set reclaim_stale_port: false";
	static const char	 refused_msg[] = "exec refused (restricted key "
	    "or ForceCommand): a port held by a stale session is freed only "
	    "by the server's ClientAlive";
	struct reclaim_proc	 proc;
	char			 out[DIAG_EXEC_OUT_MAX], *cause = NULL;
	char			*text;
	int			 status, refused, mine;

	if (!d->srv->reclaim_stale_port) {
		diag_ok(d, "exec: not tried, reclaim_stale_port is off (a port "
		    "held by a stale session waits for the server's "
		    "ClientAlive)");
		return 0;
	}
	diag_step_start(d);
	if (diag_exec_run(d, reclaim_learn_command(), out, sizeof out,
	    &status, &refused, &cause) == -1) {
		if (refused)
			diag_fail(d, fix, "%s (%s)", refused_msg, cause);
		else
			diag_fail(d, "see the server's sshd log", "exec: %s",
			    cause);
		free(cause);
		return -1;
	}
	/* As the daemon reads it: pid, start, uids, name (reclaim.c). */
	if (status == 0 && reclaim_parse_learn(out, strlen(out), &proc) == 0) {
		/* kill(2): our uid must match its real or saved uid. */
		mine = proc.uid == 0 || proc.uid == proc.owner ||
		    proc.uid == proc.saved;
		if (!reclaim_known_name(proc.name))
			diag_ok(d, "exec: works; our session there is pid %ld "
			    "(%s), not a per-connection process the reclaim "
			    "ends: a stale session's port waits for the "
			    "server's keepalive", proc.pid, proc.name);
		else if (!mine)
			diag_ok(d, "exec: works; our session there is pid %ld "
			    "(%s), owned by uid %ld: the reclaim may not end "
			    "it, a stale session's port waits for the server's "
			    "keepalive (OpenSSH ClientAliveInterval, Dropbear "
			    "-K)", proc.pid, proc.name, proc.owner);
		else
			diag_ok(d, "exec: the server runs the stale-port "
			    "reclaim's commands (our session there is pid %ld, "
			    "%s)", proc.pid, proc.name);
		return 0;
	}
	text = str_sanitize(out, strcspn(out, "\n"), DIAG_SHOW_MAX);
	diag_fail(d, fix, "%s (exit status %d, output \"%s\")", refused_msg,
	    status, text);
	free(text);
	return 0;
}

/* Close the connection and free every libssh2 object of the server. */
static void
diag_close(struct diag *d)
{
	int	i, rc;

	if (d->ss != NULL) {
		if (d->handshaken) {
			d->deadline = time_now_ms() + DIAG_BYE_MS;
			DIAG_CALL(d, rc, libssh2_session_disconnect_ex(d->ss,
			    SSH_DISCONNECT_BY_APPLICATION,
			    "tunnels check --connect: done", ""));
		}
		/* Nothing can stall the free once the socket is shut. */
		shutdown(d->fd, SHUT_RDWR);
		for (i = 0; i < DIAG_FREE_TRIES; i++)
			if (libssh2_session_free(d->ss) != LIBSSH2_ERROR_EAGAIN)
				break;
		d->ss = NULL;
		/* Whatever libssh2 did not free itself goes now. */
		(void)sshmem_release(&d->mem);
	}
	if (d->fd != -1) {
		close(d->fd);
		d->fd = -1;
	}
	kexinit_clear(&d->kex);
	free(d->hostkey_offer);
	d->hostkey_offer = NULL;
	free(d->disconnect_msg);
	d->disconnect_msg = NULL;
}

/* Diagnose one server; returns the number of problems found. */
static int
diag_server(struct diag *d, size_t index)
{
	int	rc;

	d->srv = &d->cfg->servers[index];
	d->index = index;
	d->problems = 0;
	d->fd = -1;
	d->ss = NULL;
	d->handshaking = d->handshaken = d->peer_closed = 0;
	d->disconnect_msg = NULL;
	d->address[0] = '\0';
	sshmem_init(&d->mem);
	kexinit_init(&d->kex);
	printf("server %s (%s@%s port %d)\n", d->srv->name, d->srv->user,
	    d->srv->host, d->srv->port);
	fflush(stdout);
	if (diag_resolve(d) == -1 || diag_tcp(d) == -1 ||
	    diag_session_new(d) == -1)
		goto out;
	diag_step_start(d);
	d->handshaking = 1;
	DIAG_CALL(d, rc, libssh2_session_handshake(d->ss, d->fd));
	d->handshaking = 0;
	if (diag_banner(d, rc) == -1 || diag_algorithms(d, rc) == -1)
		goto out;
	d->handshaken = 1;
	if (diag_hostkey(d) == -1 || diag_auth(d) == -1 ||
	    diag_forwards(d) == -1)
		goto out;
	(void)diag_exec(d);
out:
	diag_close(d);
	return d->problems;
}

/* Print the summary line. */
static void
diag_summary(const struct config *cfg, ssize_t only, const int *problems)
{
	size_t	i, n = 0, pass = 0;
	int	first = 1;

	for (i = 0; i < cfg->n_servers; i++) {
		if (only >= 0 && (size_t)only != i)
			continue;
		n++;
		if (problems[i] == 0)
			pass++;
	}
	if (pass == n) {
		printf("%zu of %zu server%s pass%s\n", pass, n, n == 1 ? "" : "s",
		    n == 1 ? "es" : "");
		return;
	}
	for (i = 0; i < cfg->n_servers; i++) {
		if ((only >= 0 && (size_t)only != i) || problems[i] == 0)
			continue;
		printf("%sserver %s: %d problem%s", first ? "" : "; ",
		    cfg->servers[i].name, problems[i],
		    problems[i] == 1 ? "" : "s");
		first = 0;
	}
	if (n > 1)
		printf(" (%zu of %zu servers pass)", pass, n);
	printf("\n");
}

/* See diag.h. */
int
diag_run(const struct config *cfg, ssize_t only)
{
	struct diag		 d;
	struct sigaction	 sa;
	int			*problems, rc = 0;
	size_t			 i;

	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	d.fd = -1;
	/* A server that closes while we write must not kill us. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (libssh2_init(0) != 0) {
		fprintf(stderr, "tunnels: libssh2_init failed\n");
		return 1;
	}
	if ((d.loop = loop_new()) == NULL ||
	    (d.resolver = resolver_new(d.loop)) == NULL) {
		fprintf(stderr, "tunnels: cannot set up the event loop: %s\n",
		    strerror(errno));
		loop_free(d.loop);
		libssh2_exit();
		return 1;
	}
	problems = xcalloc(cfg->n_servers > 0 ? cfg->n_servers : 1,
	    sizeof *problems);
	for (i = 0; i < cfg->n_servers; i++) {
		if (only >= 0 && (size_t)only != i)
			continue;
		if (i > 0 && only < 0)
			printf("\n");
		problems[i] = diag_server(&d, i);
		if (problems[i] > 0)
			rc = 1;
	}
	printf("\n");
	diag_summary(cfg, only, problems);
	fflush(stdout);
	free(problems);
	json_free(d.status);
	free(d.status_error);
	resolver_free(d.resolver);
	loop_free(d.loop);
	libssh2_exit();
	return rc;
}
