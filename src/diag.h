/*
 * tunnels check --connect: a live diagnosis of each server, the way the
 * daemon connects to it, one line per step (resolve, TCP, banner,
 * algorithms, host key, authentication, trial forwards, exec).
 */
#ifndef TUNNELS_DIAG_H
#define TUNNELS_DIAG_H

#include <sys/types.h>

struct config;

/*
 * Diagnose server `only` (an index into cfg->servers) or, with -1, every
 * server, printing to stdout. Returns 0 when every step passed, else 1.
 */
int	diag_run(const struct config *cfg, ssize_t only);

#endif
