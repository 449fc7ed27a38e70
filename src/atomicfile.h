/*
 * Replacing a file atomically: readers see the old content or the new,
 * never a truncated file, and the new name survives a crash.
 */
#ifndef TUNNELS_ATOMICFILE_H
#define TUNNELS_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* The step of atomicfile_write that failed, for messages. */
enum atomicfile_step {
	ATOMICFILE_CREATE,	/* no temp file could be made in the directory */
	ATOMICFILE_WRITE,	/* writing, syncing or closing it failed */
	ATOMICFILE_RENAME	/* it could not replace path */
};

/*
 * Replace path with len bytes of data, the file's mode set to mode.
 * Returns 0, or -1 with errno and *step (may be NULL) saying which step
 * failed; the temp file is removed then.
 */
int	atomicfile_write(const char *path, const void *data, size_t len,
	    mode_t mode, enum atomicfile_step *step);

#endif
