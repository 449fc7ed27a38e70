/*
 * Helpers of the fuzz targets (see fuzz.h), linked into each of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

/* The file that holds the current input (see fuzz.h). */
const char *
fuzz_file(const uint8_t *data, size_t size)
{
	static int	 fd = -1;
	static char	 path[64];
	size_t		 off = 0;
	ssize_t		 n;

	if (fd == -1) {
		if ((fd = memfd_create("fuzz-input", MFD_CLOEXEC)) == -1) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1) {
		perror("ftruncate");
		abort();
	}
	while (off < size) {
		if ((n = pwrite(fd, data + off, size - off, (off_t)off)) <= 0) {
			perror("pwrite");
			abort();
		}
		off += (size_t)n;
	}
	return path;
}

/* A NUL-terminated copy of the input. */
char *
fuzz_str(const uint8_t *data, size_t size)
{
	char	*s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
