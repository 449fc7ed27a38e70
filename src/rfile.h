/*
 * Opening the small local files the configuration names (the config
 * itself, keys, known_hosts, passphrases) so that nothing can block: a
 * FIFO, a terminal or a device put in a file's place is refused, not
 * waited on.
 */
#ifndef TUNNELS_RFILE_H
#define TUNNELS_RFILE_H

#include <sys/stat.h>

/*
 * Open path read-only without blocking (O_NONBLOCK, O_NOCTTY, O_CLOEXEC)
 * and fstat it into *st. Returns the fd of a regular file; -1 with errno
 * when it cannot be opened, or -1 with *notreg naming what it is instead
 * ("a FIFO", "a directory" ...) when it is not a regular file. *notreg
 * is NULL otherwise.
 */
int		 rfile_open(const char *path, struct stat *st,
		    const char **notreg);
/* What a file of this mode is, for messages: "a FIFO", "a socket" ... */
const char	*rfile_kind(mode_t);

#endif
