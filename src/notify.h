/*
 * systemd notification (sd_notify): READY, STATUS, WATCHDOG, RELOADING,
 * STOPPING. Message formatting is pure and unit-tested; sending is a thin
 * wrapper over libsystemd and a no-op outside systemd.
 */
#ifndef TUNNELS_NOTIFY_H
#define TUNNELS_NOTIFY_H

#include <stdint.h>

enum notify_event {
	NOTIFY_READY = 0,	/* READY=1 + STATUS= */
	NOTIFY_STATUS,		/* STATUS= only */
	NOTIFY_RELOADING,	/* RELOADING=1 + MONOTONIC_USEC= + STATUS= */
	NOTIFY_STOPPING,	/* STOPPING=1 + STATUS= */
	NOTIFY_WATCHDOG		/* WATCHDOG=1 */
};

/*
 * The datagram for an event (malloc'd). status may be NULL; newlines in
 * it are replaced (one line only). monotonic_usec is used by RELOADING.
 * Exported for the unit tests.
 */
char	*notify_format(enum notify_event, const char *status,
	    uint64_t monotonic_usec);

/* Send an event to $NOTIFY_SOCKET (nothing when unset). */
void	 notify_send(enum notify_event, const char *status);

/* Watchdog interval in ms (half of WATCHDOG_USEC), 0 when disabled. */
int64_t	 notify_watchdog_interval_ms(void);

#endif
