/*
 * Replacing a file atomically. The new content goes to a temp file in the
 * same directory (rename is atomic only within a filesystem) made by
 * mkostemp: a unique name created with O_EXCL, so nothing planted in the
 * directory is followed or truncated. Its name starts with a dot, so a
 * "*.conf" include (nginx) never picks it up half-written. The file is
 * fsync'd before the rename and the directory after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "util.h"

/* Write all of data to fd; 0 or -1 with errno (a short write is EIO). */
static int
atomicfile_write_all(int fd, const char *data, size_t len)
{
	ssize_t	r;

	while (len > 0) {
		r = write(fd, data, len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

/* fsync the directory dir; a failure loses nothing already written. */
static void
atomicfile_sync_dir(const char *dir)
{
	int	dfd;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
}

/* Replace path with data (see atomicfile.h). */
int
atomicfile_write(const char *path, const void *data, size_t len, mode_t mode,
    enum atomicfile_step *step)
{
	enum atomicfile_step	 at = ATOMICFILE_CREATE;
	const char		*slash = strrchr(path, '/');
	char			*dir, *tmp;
	int			 fd, err, rv = -1;

	if (slash == NULL)
		dir = xstrdup(".");
	else
		dir = xstrndup(path, slash == path ? 1 :
		    (size_t)(slash - path));
	tmp = xasprintf("%s/.%s.XXXXXX", dir, slash == NULL ? path :
	    slash + 1);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto out;
	at = ATOMICFILE_WRITE;
	/* mkostemp creates 0600; fchmod is not subject to the umask. */
	if (fchmod(fd, mode) == -1 ||
	    atomicfile_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		err = errno;
		close(fd);
		errno = err;
		goto unlink;
	}
	if (close(fd) == -1)
		goto unlink;
	at = ATOMICFILE_RENAME;
	if (rename(tmp, path) == -1)
		goto unlink;
	atomicfile_sync_dir(dir);
	rv = 0;
	goto out;
unlink:
	err = errno;
	(void)unlink(tmp);
	errno = err;
out:
	err = errno;
	free(tmp);
	free(dir);
	if (step != NULL)
		*step = at;
	errno = err;
	return rv;
}
