/*
 * systemd notification. systemd 252 has no Type=notify-reload, but it
 * still honours RELOADING=1 (with MONOTONIC_USEC, required from 253 on)
 * followed by READY=1, which tunnels sends around every reload.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "notify.h"
#include "util.h"

/* Build the notification datagram for an event. */
char *
notify_format(enum notify_event ev, const char *status, uint64_t mono_usec)
{
	struct buf	 b;
	char		*line = NULL, *p;

	buf_init(&b);
	if (status != NULL) {
		/* STATUS= is one line: a newline would end the assignment. */
		line = xstrdup(status);
		for (p = line; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	switch (ev) {
	case NOTIFY_READY:
		buf_printf(&b, "READY=1");
		break;
	case NOTIFY_STATUS:
		break;
	case NOTIFY_RELOADING:
		buf_printf(&b, "RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)mono_usec);
		break;
	case NOTIFY_STOPPING:
		buf_printf(&b, "STOPPING=1");
		break;
	case NOTIFY_WATCHDOG:
		buf_printf(&b, "WATCHDOG=1");
		break;
	}
	if (line != NULL && ev != NOTIFY_WATCHDOG)
		buf_printf(&b, "%sSTATUS=%s", b.len ? "\n" : "", line);
	free(line);
	p = xstrdup(buf_cstr(&b));
	buf_clear(&b);
	return p;
}

/* Send one event to systemd (a no-op when not run by systemd). */
void
notify_send(enum notify_event ev, const char *status)
{
	struct timespec	 ts;
	uint64_t	 usec;
	char		*msg;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	msg = notify_format(ev, status, usec);
	sd_notify(0, msg);
	free(msg);
}

/* Half the watchdog timeout systemd set for us, or 0. */
int64_t
notify_watchdog_interval_ms(void)
{
	uint64_t	usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	return (int64_t)(usec / 2000) > 0 ? (int64_t)(usec / 2000) : 1;
}
