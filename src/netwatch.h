/*
 * Network change notification from the kernel (rtnetlink): a link coming
 * up, an address or a route being added. Debounced, then reported once.
 */
#ifndef TUNNELS_NETWATCH_H
#define TUNNELS_NETWATCH_H

struct loop;
struct netwatch;

/* NULL (with errno) if netlink is unavailable; the daemon goes on. */
struct netwatch	*netwatch_new(struct loop *, void (*)(void *), void *);
void		 netwatch_free(struct netwatch *);

#endif
