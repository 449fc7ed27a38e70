/*
 * What every long-lived object of the daemon needs from above: the loop,
 * the resolver, the global backoff bounds, and a way to say "my state
 * changed" so the supervisor refreshes STATUS= and READY=.
 */
#ifndef TUNNELS_RUNTIME_H
#define TUNNELS_RUNTIME_H

#include <stdint.h>

#include "window.h"

struct loop;
struct resolver;

struct runtime {
	struct loop	 *loop;
	struct resolver	 *resolver;
	int64_t		  backoff_initial_ms;
	int64_t		  backoff_max_ms;
	const char	 *state_dir;	/* NULL: memory only */
	const char	 *state_name;	/* config file stem: state file prefix */
	uint64_t	  config_gen;	/* bumps with every reload applied */
	/* What grown receive windows hold, all servers together. */
	struct window_budget window_budget;
	void		(*changed)(void *arg);
	void		 *changed_arg;
};

/* Tell the supervisor that some state changed. */
static inline void
runtime_changed(const struct runtime *rt)
{
	if (rt->changed != NULL)
		rt->changed(rt->changed_arg);
}

#endif
