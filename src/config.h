/*
 * The configuration: libyaml -> an immutable struct config. Every problem
 * is collected with its line and column, never only the first one.
 */
#ifndef TUNNELS_CONFIG_H
#define TUNNELS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "addr.h"

#define CONFIG_DEFAULT_PATH	"/etc/tunnels/tunnels.yaml"
#define CONFIG_DEFAULT_CONTROL	"/run/tunnels/control.sock"
#define CONFIG_DEFAULT_STATE	"/var/lib/tunnels"
#define CONFIG_DEFAULT_WEBROOT	"/var/www/letsencrypt"

/* Limits against a misbehaving server (or its clients). */
#define CONFIG_DEFAULT_SESSION_MEMORY	(64ULL << 20)
#define CONFIG_DEFAULT_RECEIVE_WINDOW	(16ULL << 20)
#define CONFIG_DEFAULT_WINDOW_BUDGET	(64ULL << 20)
/* SSH windows are 32-bit; far above any useful size. */
#define CONFIG_MAX_RECEIVE_WINDOW	(1ULL << 30)
#define CONFIG_MIN_SESSION_MEMORY	(1ULL << 20)
#define CONFIG_DEFAULT_SERVER_CONNS	16384
#define CONFIG_DEFAULT_TUNNEL_CONNS	4096

enum config_tls {
	CONFIG_TLS_OFF = 0,
	CONFIG_TLS_LETSENCRYPT,
	CONFIG_TLS_FILES		/* {cert: PATH, key: PATH} */
};

/* The optional nginx: section of a tunnel (used by `tunnels nginx`). */
struct config_nginx {
	char		**server_names;
	size_t		  n_server_names;
	enum config_tls	  tls;
	char		 *cert;			/* CONFIG_TLS_FILES only */
	char		 *key;			/* CONFIG_TLS_FILES only */
	int		  websocket;		/* default 1 */
	char		 *client_max_body_size;	/* NULL when unset */
	char		 *acme_webroot;		/* default CONFIG_DEFAULT_WEBROOT */
	int		  line, col;
};

struct config_server {
	char		*name;
	char		*host;
	int		 port;			/* default 22 */
	char		*user;
	char		*identity;		/* private key path */
	char		*passphrase_file;	/* NULL when unset */
	char		*known_hosts;		/* NULL when host_key is set */
	char		*host_key;		/* "TYPE BASE64", NULL when unset */
	int64_t		 keepalive_ms;		/* default 10 s */
	int		 keepalive_count;	/* default 3 */
	int64_t		 connect_timeout_ms;	/* default 10 s */
	int		 reclaim_stale_port;	/* default 1 */
	/* Limits; a reload applies them to the running session. */
	uint64_t	 max_session_memory;	/* bytes libssh2 may hold */
	int		 max_connections;	/* over all its tunnels */
	/* Largest receive window a channel grows to (window.c); at most the
	 * base window (2 MiB) turns autotuning off. */
	uint64_t	 max_receive_window;
	int		 line, col;		/* of the server's key */
};

struct config_tunnel {
	char			*name;
	char			*server;	/* name; resolved by the loader */
	size_t			 server_index;	/* index into config.servers */
	struct addr		 remote;	/* default host 127.0.0.1 */
	struct addr		 local;		/* default host 127.0.0.1 */
	struct config_nginx	*nginx;		/* NULL when absent */
	int			 max_connections; /* applied on reload */
	int			 line, col;	/* of the list item */
};

struct config {
	char			*path;
	char			*control;	/* default CONFIG_DEFAULT_CONTROL */
	char			*state_dir;	/* default CONFIG_DEFAULT_STATE */
	struct config_server	*servers;
	size_t			 n_servers;
	struct config_tunnel	*tunnels;
	size_t			 n_tunnels;
	int64_t			 backoff_initial_ms;	/* default 1 s */
	int64_t			 backoff_max_ms;	/* default 60 s */
	/* What grown receive windows may hold beyond the base, daemon-wide. */
	uint64_t		 receive_window_budget;
};

struct config_error {
	int	 line, col;	/* 1-based; 0 when not tied to a place */
	char	*msg;
};

struct config_errors {
	char			*file;
	struct config_error	*v;
	size_t			 n;
	int			 truncated;	/* stopped after 100 errors */
	/* Warnings: worth saying, but the config stays valid. */
	struct config_error	*warn;
	size_t			 n_warn;
};

/*
 * Parse YAML text. path is used for messages and relative-path checks.
 * check_files: also check the filesystem (identity exists, is readable,
 * mode not group/other readable, not DSA; known_hosts exists and
 * parses ...).
 * Returns NULL when errs->n > 0 after the call.
 */
struct config	*config_parse(const char *path, const char *text, size_t len,
		    int check_files, struct config_errors *errs);

/* Read the file and parse it (check_files = 1). */
struct config	*config_load(const char *path, struct config_errors *errs);
/*
 * The control socket a config file names, even if invalid (malloc'd); the
 * default when the file is unreadable or names none. NULL with *cause
 * "FILE: message" (malloc'd) when the file is not a regular file or is
 * too large to be a config.
 */
char		*config_control_path(const char *path, char **cause);
/* Read the file and parse it, with or without the filesystem checks. */
struct config	*config_load_ex(const char *path, int check_files,
		    struct config_errors *errs);

void		 config_free(struct config *);

/* Print every error as "FILE:LINE:COL: message" (one per line). */
void		 config_errors_print(const struct config_errors *, FILE *);
/* Print every warning as "FILE:LINE:COL: warning: message". */
void		 config_warnings_print(const struct config_errors *, FILE *);
void		 config_errors_clear(struct config_errors *);
/* Error i formatted as config_errors_print prints it (malloc'd). */
char		*config_error_text(const struct config_errors *, size_t i);

/* The index of the server or tunnel called name, or -1. */
ssize_t		 config_server_index(const struct config *, const char *name);
ssize_t		 config_tunnel_index(const struct config *, const char *name);

/* The server called name, or NULL. */
static inline const struct config_server *
config_server_find(const struct config *cfg, const char *name)
{
	ssize_t	i = config_server_index(cfg, name);

	return i == -1 ? NULL : &cfg->servers[i];
}

/* The tunnel called name, or NULL. */
static inline const struct config_tunnel *
config_tunnel_find(const struct config *cfg, const char *name)
{
	ssize_t	i = config_tunnel_index(cfg, name);

	return i == -1 ? NULL : &cfg->tunnels[i];
}

/* 1 if the two specs would behave identically (reload diff). */
int		 config_server_equal(const struct config_server *,
		    const struct config_server *);
/* Ignores the nginx section: a reload must not restart a tunnel for it. */
int		 config_tunnel_equal(const struct config_tunnel *,
		    const struct config_tunnel *);
/* 1 if two nginx sections are identical (both may be NULL). Exported for the unit tests. */
int		 config_nginx_equal(const struct config_nginx *,
		    const struct config_nginx *);

/*
 * Parse "10s", "500ms", "1m", "2h": returns 0 or -1 with *cause. Exported for the unit tests.
 */
int		 config_parse_duration(const char *, int64_t *ms, char **cause);

/*
 * Parse "65536", "512KiB", "64MiB", "1GiB" (K, M, G: the same, base
 * 1024): returns 0 or -1 with *cause. Exported for the unit tests.
 */
int		 config_parse_size(const char *, uint64_t *bytes, char **cause);

/* Format bytes in the largest exact binary unit ("64MiB", "1500B"). */
void		 config_format_size(uint64_t bytes, char *buf, size_t len);

#endif
