/*
 * What a server needs for one home's config, as text: the permitlisten
 * specs, the authorized_keys line, the sshd Match block (shared by the
 * paste output of `tunnels server-setup`), and the whole POSIX sh script
 * of `tunnels server-setup --script`, which converges the server to them
 * (src/setup_script.sh is its fixed part). Pure: no I/O.
 */
#ifndef TUNNELS_SETUP_SCRIPT_H
#define TUNNELS_SETUP_SCRIPT_H

#include <stddef.h>

struct buf;
struct config;

/* The longest home name (--home). */
#define SETUP_HOME_MAX	64

struct setup_script_opts {
	const char	*version;	/* for the headers */
	const char	*config_path;	/* the home's config, for the headers */
	const char	*home;		/* this home's name (setup_home_ok) */
	const char	*pub;		/* the identity's "TYPE BASE64" */
	const char	*comment;	/* the key's own comment, or NULL */
	const char	*email;		/* certbot account email, or NULL */
};

/* The remotes of server si as permitlisten spells them, deduped. */
size_t	 setup_listen_specs(const struct config *, size_t si, char ***out);
void	 setup_specs_free(char **, size_t);

/*
 * The tag that marks this home's key line (its last field) and names its
 * managed blocks: "tunnels:HOME/SERVER" (malloc'd). Characters outside
 * [A-Za-z0-9._-] in the server name become '-'.
 */
char	*setup_tag(const char *home, const char *server);

/*
 * The stem of this home's file names: "tunnels-HOME-SERVER" (malloc'd).
 * Exported for the unit tests.
 */
char	*setup_stem(const char *home, const char *server);

/* 1 if s is a usable home name: 1-64 of [A-Za-z0-9._-], no leading dot. */
int	 setup_home_ok(const char *s);

/* A home name from any text (a host name): invalid bytes become '-'. */
char	*setup_home_from(const char *s);

/*
 * The authorized_keys line: restrict, port-forwarding (when n > 0), no
 * command execution unless exec, one permitlisten per spec, the key, its
 * own comment (if any) and the tag.
 */
void	 setup_key_line(struct buf *, char **specs, size_t n, int exec,
	    const char *pub, const char *comment, const char *tag);

/* The sshd_config Match User block of server si (tab-indented lines). */
void	 setup_sshd_block(struct buf *, const struct config *, size_t si,
	    char **specs, size_t n);

/*
 * The whole script for server si. Problems that leave a tunnel out of
 * nginx (remote port 0) are appended to warn as lines.
 */
void	 setup_script_render(const struct config *, size_t si,
	    const struct setup_script_opts *, struct buf *out,
	    struct buf *warn);

#endif
