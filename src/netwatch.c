/*
 * Network change notification. A laptop waking up or a router handing out
 * a new address shows up here as RTM_NEWLINK/NEWADDR/NEWROUTE; the daemon
 * then retries backed-off servers at once instead of waiting out their
 * backoff. Bursts (an interface brings several addresses and routes) are
 * folded into one notification.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "netwatch.h"
#include "util.h"

/* Quiet time after the last event before reporting. */
#define NETWATCH_DEBOUNCE_MS	500

struct netwatch {
	struct loop		 *loop;
	int			  fd;
	struct loop_io		  io;
	struct loop_timer	  debounce;
	void			(*cb)(void *);
	void			 *arg;
};

/* 1 if the message says the network may have come (back) up. */
static int
netwatch_is_up_event(const struct nlmsghdr *h)
{
	const struct ifinfomsg	*ifi;

	switch (h->nlmsg_type) {
	case RTM_NEWADDR:
	case RTM_NEWROUTE:
		return 1;
	case RTM_NEWLINK:
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof *ifi))
			return 0;
		ifi = NLMSG_DATA(h);
		return (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);
	default:
		return 0;
	}
}

/* Drain the socket; arm the debounce timer on an "up" event. */
static void
netwatch_read(void *arg, uint32_t events)
{
	struct netwatch		*nw = arg;
	char			 buf[8192];
	const struct nlmsghdr	*h;
	ssize_t			 n;
	int			 up = 0;

	(void)events;
	for (;;) {
		n = recv(nw->fd, buf, sizeof buf, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		    h = NLMSG_NEXT(h, n))
			if (netwatch_is_up_event(h))
				up = 1;
	}
	/* ENOBUFS: events were lost, so something did change. */
	if (n == -1 && errno == ENOBUFS)
		up = 1;
	if (up)
		loop_timer_in(nw->loop, &nw->debounce, NETWATCH_DEBOUNCE_MS);
}

/* The burst is over: report it. */
static void
netwatch_fire(void *arg)
{
	struct netwatch	*nw = arg;

	nw->cb(nw->arg);
}

/* Subscribe to link, address and route changes. */
struct netwatch *
netwatch_new(struct loop *l, void (*cb)(void *), void *arg)
{
	struct netwatch		*nw;
	struct sockaddr_nl	 sa;
	int			 fd, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE);
	if (fd == -1)
		return NULL;
	memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	nw = xcalloc(1, sizeof *nw);
	nw->loop = l;
	nw->fd = fd;
	nw->cb = cb;
	nw->arg = arg;
	loop_timer_init(&nw->debounce, netwatch_fire, nw);
	loop_io_init(&nw->io, netwatch_read, nw);
	if (loop_io_add(l, &nw->io, fd, EPOLLIN) == -1) {
		err = errno;
		netwatch_free(nw);
		errno = err;
		return NULL;
	}
	return nw;
}

/* Unsubscribe. */
void
netwatch_free(struct netwatch *nw)
{
	if (nw == NULL)
		return;
	loop_timer_stop(nw->loop, &nw->debounce);
	loop_io_del(nw->loop, &nw->io);
	close(nw->fd);
	free(nw);
}
