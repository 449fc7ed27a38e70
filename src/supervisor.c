/*
 * The supervisor owns one session per configured server and knows which
 * forward serves which tunnel. A reload builds nothing from scratch that
 * did not change: like nginx, a new config is only accepted once fully
 * valid, and then applied as a difference.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "forward.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "runtime.h"
#include "session.h"
#include "supervisor.h"

/* How long stopping waits for the servers to close their side. */
#define SUPERVISOR_GOODBYE_MS	500

/* One tunnel of the config and the objects serving it. */
struct sup_tunnel {
	struct session	*s;
	struct forward	*f;
};

struct supervisor {
	struct runtime		 rt;
	struct config		*cfg;
	int64_t			 started_ms;
	struct session		**sessions;	/* parallel to cfg->servers */
	struct sup_tunnel	 *tunnels;	/* parallel to cfg->tunnels */
	char			 *state_name;
	unsigned		  reloads;
	char			 *reload_error;
	struct loop_post	  changed_post;
	void			(*on_change)(void *);
	void			 *on_change_arg;
};

/* Coalesced: state changed during this round. */
static void
supervisor_changed_run(void *arg)
{
	struct supervisor	*sv = arg;

	if (sv->on_change != NULL)
		sv->on_change(sv->on_change_arg);
}

/* Runtime hook: some session or forward changed state. */
static void
supervisor_changed(void *arg)
{
	struct supervisor	*sv = arg;

	loop_post(sv->rt.loop, &sv->changed_post);
}

/*
 * The stem of the config file name ("tunnels" for tunnels.yaml): state
 * files are named after it, so that two daemons (tunnels@a, tunnels@b)
 * sharing a state directory never read each other's sessions.
 */
static char *
supervisor_state_name(const char *path)
{
	const char	*base = strrchr(path, '/');
	size_t		 n;

	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".yaml") == 0)
		n -= 5;
	else if (n > 4 && strcmp(base + n - 4, ".yml") == 0)
		n -= 4;
	return xstrndup(base, n);
}

/*
 * Copy the global settings of cfg into the runtime, which every session
 * and forward reads when it is created (and kept ones when told so by
 * session_set_runtime()).
 */
static void
supervisor_set_runtime(struct supervisor *sv, const struct config *cfg)
{
	sv->rt.backoff_initial_ms = cfg->backoff_initial_ms;
	sv->rt.backoff_max_ms = cfg->backoff_max_ms;
	sv->rt.state_dir = cfg->state_dir;
	sv->rt.window_budget.limit = cfg->receive_window_budget;
	free(sv->state_name);
	sv->state_name = supervisor_state_name(cfg->path);
	sv->rt.state_name = sv->state_name;
}

/* Create the supervisor for cfg (nothing runs before start). */
struct supervisor *
supervisor_new(struct loop *l, struct resolver *r, struct config *cfg)
{
	struct supervisor	*sv = xcalloc(1, sizeof *sv);

	sv->rt.loop = l;
	sv->rt.resolver = r;
	sv->rt.changed = supervisor_changed;
	sv->rt.changed_arg = sv;
	sv->cfg = cfg;
	sv->started_ms = loop_now(l);
	supervisor_set_runtime(sv, cfg);
	loop_post_init(&sv->changed_post, supervisor_changed_run, sv);
	return sv;
}

/* 1 if some tunnel of cfg uses server i. */
static int
supervisor_server_used(const struct config *cfg, size_t i)
{
	size_t	k;

	for (k = 0; k < cfg->n_tunnels; k++)
		if (cfg->tunnels[k].server_index == i)
			return 1;
	return 0;
}

/* Create sessions and forwards for the current config and start them. */
void
supervisor_start(struct supervisor *sv)
{
	const struct config	*cfg = sv->cfg;
	size_t			 i;

	sv->sessions = xcalloc(cfg->n_servers, sizeof *sv->sessions);
	sv->tunnels = xcalloc(cfg->n_tunnels, sizeof *sv->tunnels);
	for (i = 0; i < cfg->n_servers; i++)
		sv->sessions[i] = session_new(&sv->rt, &cfg->servers[i]);
	for (i = 0; i < cfg->n_tunnels; i++) {
		sv->tunnels[i].s = sv->sessions[cfg->tunnels[i].server_index];
		sv->tunnels[i].f = session_add_tunnel(sv->tunnels[i].s,
		    &cfg->tunnels[i]);
	}
	/* A server without tunnels has nothing to do: don't connect. */
	for (i = 0; i < cfg->n_servers; i++)
		if (supervisor_server_used(cfg, i))
			session_start(sv->sessions[i]);
	supervisor_changed(sv);
}

/* Stop everything at once: connections are dropped, not drained. */
void
supervisor_free(struct supervisor *sv)
{
	size_t	i;

	if (sv == NULL)
		return;
	if (sv->sessions != NULL)
		session_goodbye_all(sv->sessions, sv->cfg->n_servers,
		    SUPERVISOR_GOODBYE_MS);
	for (i = 0; sv->sessions != NULL && i < sv->cfg->n_servers; i++)
		session_free(sv->sessions[i]);
	free(sv->sessions);
	free(sv->tunnels);
	loop_post_cancel(sv->rt.loop, &sv->changed_post);
	config_free(sv->cfg);
	free(sv->reload_error);
	free(sv->state_name);
	free(sv);
}

/*
 * A reload in the making: what serves each new server and tunnel, and
 * which old ones are kept (by old index).
 */
struct sup_diff {
	struct config		 *nc;
	struct session		**ns;		/* parallel to nc->servers */
	struct sup_tunnel	 *nt;		/* parallel to nc->tunnels */
	char			 *kept_server;
	char			 *kept_tunnel;
	unsigned		  same, added, removed;
};

/*
 * Match: servers whose settings did not change keep their session (it
 * takes the new backoff bounds and state_dir); unchanged tunnels on a
 * kept session keep their forward.
 */
static void
supervisor_match(struct supervisor *sv, struct sup_diff *d)
{
	const struct config		*oc = sv->cfg, *nc = d->nc;
	const struct config_server	*os;
	const struct config_tunnel	*ot;
	size_t				 j, m;

	for (j = 0; j < nc->n_servers; j++) {
		os = config_server_find(oc, nc->servers[j].name);
		if (os == NULL || !config_server_equal(os, &nc->servers[j])) {
			d->ns[j] = session_new(&sv->rt, &nc->servers[j]);
			continue;
		}
		m = (size_t)(os - oc->servers);
		d->ns[j] = sv->sessions[m];
		d->kept_server[m] = 1;
		session_set_config(d->ns[j], &nc->servers[j]);
		session_set_runtime(d->ns[j]);
	}
	for (j = 0; j < nc->n_tunnels; j++) {
		d->nt[j].s = d->ns[nc->tunnels[j].server_index];
		ot = config_tunnel_find(oc, nc->tunnels[j].name);
		if (ot == NULL)
			continue;
		m = (size_t)(ot - oc->tunnels);
		if (sv->tunnels[m].s != d->nt[j].s ||
		    !config_tunnel_equal(ot, &nc->tunnels[j]))
			continue;
		d->nt[j].f = sv->tunnels[m].f;
		d->kept_tunnel[m] = 1;
		forward_set_config(d->nt[j].f, &nc->tunnels[j]);
		d->same++;
	}
}

/*
 * Remove what was not kept. Before adding: a changed tunnel's old
 * listener is cancelled on the server before its replacement asks for the
 * same port (requests on one session are handled in order).
 */
static void
supervisor_remove(struct supervisor *sv, struct sup_diff *d)
{
	const struct config	*oc = sv->cfg;
	size_t			 i;

	for (i = 0; i < oc->n_tunnels; i++) {
		if (d->kept_tunnel[i])
			continue;
		d->removed++;
		if (d->kept_server[oc->tunnels[i].server_index])
			session_remove_tunnel(sv->tunnels[i].s,
			    sv->tunnels[i].f);
	}
	for (i = 0; i < oc->n_servers; i++)
		if (!d->kept_server[i])
			session_free(sv->sessions[i]);
}

/* Add the new tunnels; start new sessions and kept idle ones. */
static void
supervisor_add(struct sup_diff *d)
{
	const struct config	*nc = d->nc;
	size_t			 j;

	for (j = 0; j < nc->n_tunnels; j++) {
		if (d->nt[j].f != NULL)
			continue;
		d->nt[j].f = session_add_tunnel(d->nt[j].s, &nc->tunnels[j]);
		d->added++;
	}
	for (j = 0; j < nc->n_servers; j++)
		if (session_state(d->ns[j]) == SESSION_STOPPED &&
		    supervisor_server_used(nc, j))
			session_start(d->ns[j]);
}

/* Apply nc as a difference against the running config: match, remove, add. */
void
supervisor_reload(struct supervisor *sv, struct config *nc)
{
	struct sup_diff	d;

	memset(&d, 0, sizeof d);
	d.nc = nc;
	d.ns = xcalloc(nc->n_servers, sizeof *d.ns);
	d.nt = xcalloc(nc->n_tunnels, sizeof *d.nt);
	d.kept_server = xcalloc(sv->cfg->n_servers + 1, 1);
	d.kept_tunnel = xcalloc(sv->cfg->n_tunnels + 1, 1);
	/* The new global settings first: everything below reads them. */
	supervisor_set_runtime(sv, nc);
	supervisor_match(sv, &d);
	supervisor_remove(sv, &d);
	supervisor_add(&d);
	log_notice(NULL, NULL, "reloaded %s: %u tunnels unchanged, %u "
	    "started, %u stopped", nc->path, d.same, d.added, d.removed);

	free(sv->sessions);
	free(sv->tunnels);
	free(d.kept_server);
	free(d.kept_tunnel);
	sv->sessions = d.ns;
	sv->tunnels = d.nt;
	config_free(sv->cfg);
	sv->cfg = nc;
	sv->reloads++;
	/* Sessions up now logged in under the previous config (session.c). */
	sv->rt.config_gen++;
	free(sv->reload_error);
	sv->reload_error = NULL;
	supervisor_changed(sv);
}

/* Remember why the last reload was refused (shown in status). */
void
supervisor_reload_failed(struct supervisor *sv, const char *why)
{
	free(sv->reload_error);
	sv->reload_error = xstrdup(why);
	sv->reloads++;
	supervisor_changed(sv);
}

/* Reconnect and re-request everything that is waiting, now. */
void
supervisor_retry_now(struct supervisor *sv)
{
	size_t	i;

	for (i = 0; i < sv->cfg->n_servers; i++)
		if (supervisor_server_used(sv->cfg, i))
			session_retry_now(sv->sessions[i]);
}

/* The network changed: retry or probe every used server. */
void
supervisor_network_changed(struct supervisor *sv)
{
	size_t	i;

	for (i = 0; i < sv->cfg->n_servers; i++)
		if (supervisor_server_used(sv->cfg, i))
			session_network_changed(sv->sessions[i]);
}

/* The config in force. */
const struct config *
supervisor_config(const struct supervisor *sv)
{
	return sv->cfg;
}

/* Register the (coalesced) change hook. */
void
supervisor_on_change(struct supervisor *sv, void (*fn)(void *), void *arg)
{
	sv->on_change = fn;
	sv->on_change_arg = arg;
}

/* 1 when tunnel k has come up or failed its first attempt. */
static int
supervisor_tunnel_settled(struct supervisor *sv, size_t k)
{
	enum forward_state	st = forward_state(sv->tunnels[k].f);

	return st == FORWARD_UP || st == FORWARD_WAITING ||
	    st == FORWARD_FAILED || session_settled(sv->tunnels[k].s);
}

/* 1 once every tunnel came up or failed its first attempt. */
int
supervisor_settled(struct supervisor *sv)
{
	size_t	k;

	for (k = 0; k < sv->cfg->n_tunnels; k++)
		if (!supervisor_tunnel_settled(sv, k))
			return 0;
	return 1;
}

/* "3/4 tunnels up; blog: ..." for STATUS=. */
char *
supervisor_status_line(struct supervisor *sv)
{
	struct buf	 b;
	char		*part, *line;
	size_t		 k, up = 0;
	int64_t		 now = loop_now(sv->rt.loop);

	buf_init(&b);
	for (k = 0; k < sv->cfg->n_tunnels; k++)
		if (forward_state(sv->tunnels[k].f) == FORWARD_UP)
			up++;
	buf_printf(&b, "%zu/%zu tunnels up", up, sv->cfg->n_tunnels);
	/* Name the first tunnel that is not up, and why. */
	for (k = 0; k < sv->cfg->n_tunnels; k++) {
		if (forward_state(sv->tunnels[k].f) == FORWARD_UP)
			continue;
		if (session_state(sv->tunnels[k].s) != SESSION_UP)
			part = session_summary(sv->tunnels[k].s, now);
		else
			part = forward_summary(sv->tunnels[k].f, now);
		buf_printf(&b, "; %s", part);
		free(part);
		break;
	}
	if (sv->reload_error != NULL)
		buf_printf(&b, "; reload failed: %s", sv->reload_error);
	line = xstrdup(buf_cstr(&b));
	buf_clear(&b);
	return line;
}

/* The status document served on the control socket. */
void
supervisor_status_json(struct supervisor *sv, struct buf *b)
{
	const struct config	*cfg = sv->cfg;
	int64_t			 now = loop_now(sv->rt.loop);
	size_t			 i;

	buf_printf(b, "{\"version\":");
	json_str(b, TUNNELS_VERSION);
	buf_printf(b, ",\"pid\":%ld,\"uptime_s\":%lld,\"config\":",
	    (long)getpid(), (long long)(now - sv->started_ms) / 1000);
	json_str(b, cfg->path);
	buf_printf(b, ",\"reloads\":%u,\"reload_error\":", sv->reloads);
	json_str(b, sv->reload_error);
	buf_printf(b, ",\"ready\":%s,\"servers\":[",
	    supervisor_settled(sv) ? "true" : "false");
	for (i = 0; i < cfg->n_servers; i++) {
		if (i > 0)
			buf_printf(b, ",");
		session_status_json(sv->sessions[i], b, now);
	}
	buf_printf(b, "],\"receive_window_budget\":{\"limit\":%llu,"
	    "\"used\":%llu},\"tunnels\":[",
	    (unsigned long long)sv->rt.window_budget.limit,
	    (unsigned long long)sv->rt.window_budget.used);
	for (i = 0; i < cfg->n_tunnels; i++) {
		if (i > 0)
			buf_printf(b, ",");
		forward_status_json(sv->tunnels[i].f, b, now);
	}
	buf_printf(b, "]}");
}
