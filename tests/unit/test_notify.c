/*
 * Unit tests for notify.c: the message formats, and delivery to a fake
 * NOTIFY_SOCKET (a datagram socket this test binds, as systemd would).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "notify.h"

/* Each event formats exactly as systemd expects. */
static void
test_notify_format(void **state)
{
	char	*m;

	(void)state;
	m = notify_format(NOTIFY_READY, "1/1 tunnels up", 0);
	assert_string_equal(m, "READY=1\nSTATUS=1/1 tunnels up");
	free(m);
	m = notify_format(NOTIFY_STATUS, "0/2 tunnels up; a: b", 0);
	assert_string_equal(m, "STATUS=0/2 tunnels up; a: b");
	free(m);
	m = notify_format(NOTIFY_RELOADING, "reloading", 123456789);
	assert_string_equal(m,
	    "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading");
	free(m);
	m = notify_format(NOTIFY_STOPPING, NULL, 0);
	assert_string_equal(m, "STOPPING=1");
	free(m);
	m = notify_format(NOTIFY_WATCHDOG, "ignored", 0);
	assert_string_equal(m, "WATCHDOG=1");
	free(m);
	/* A newline in the status must not inject another assignment. */
	m = notify_format(NOTIFY_STATUS, "x\nREADY=1", 0);
	assert_string_equal(m, "STATUS=x READY=1");
	free(m);
}

/* Bind a datagram socket in a temp dir and point NOTIFY_SOCKET at it. */
static int
fake_systemd(char *path, size_t len)
{
	struct sockaddr_un	sun;
	char			dir[] = "/tmp/tunnels-notify-XXXXXX";
	int			fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, len, "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof sun.sun_path);
	memcpy(sun.sun_path, path, strlen(path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	return fd;
}

/* Receive one datagram as a string. */
static void
fake_recv(int fd, char *buf, size_t len)
{
	ssize_t	n = recv(fd, buf, len - 1, 0);

	assert_true(n > 0);
	buf[n] = '\0';
}

/* notify_send delivers each event to $NOTIFY_SOCKET. */
static void
test_notify_send(void **state)
{
	char	path[256], got[512];
	int	fd;

	(void)state;
	fd = fake_systemd(path, sizeof path);
	notify_send(NOTIFY_READY, "2/2 tunnels up");
	fake_recv(fd, got, sizeof got);
	assert_string_equal(got, "READY=1\nSTATUS=2/2 tunnels up");
	notify_send(NOTIFY_RELOADING, "reloading");
	fake_recv(fd, got, sizeof got);
	assert_non_null(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
	assert_true(strtoull(strstr(got, "USEC=") + 5, NULL, 10) > 0);
	notify_send(NOTIFY_STOPPING, "stopping");
	fake_recv(fd, got, sizeof got);
	assert_string_equal(got, "STOPPING=1\nSTATUS=stopping");
	close(fd);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	unsetenv("NOTIFY_SOCKET");
}

/* The watchdog interval is half of WATCHDOG_USEC, only for our pid. */
static void
test_notify_watchdog_interval(void **state)
{
	char	pid[32];

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_interval_ms(), 0);
	setenv("WATCHDOG_USEC", "2000000", 1);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_interval_ms(), 1000);
	/* Meant for another process (a child we did not exec): ignore. */
	snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_interval_ms(), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_notify_format),
		cmocka_unit_test(test_notify_send),
		cmocka_unit_test(test_notify_watchdog_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
