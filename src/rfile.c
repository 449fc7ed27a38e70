/*
 * Opening configuration files without blocking (see rfile.h). open(2) of
 * a FIFO waits for a writer unless O_NONBLOCK is given, and a read of a
 * terminal waits for input: either would hang `tunnels check`, the
 * daemon's start or a reload. O_NONBLOCK changes nothing for a regular
 * file, the only kind accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "rfile.h"

/* What a file of this mode is, for messages. */
const char *
rfile_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "of an unknown type";
}

/* Open a regular file for reading without ever blocking. */
int
rfile_open(const char *path, struct stat *st, const char **notreg)
{
	int	fd, saved;

	*notreg = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		*notreg = rfile_kind(st->st_mode);
		close(fd);
		return -1;
	}
	return fd;
}
