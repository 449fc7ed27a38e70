/*
 * What the fuzz targets share: input handed over as a file, for the
 * loaders that take a path. A memfd stands for the file, named by its
 * /proc/self/fd path: no file system writes, nothing left behind.
 */
#ifndef TUNNELS_FUZZ_H
#define TUNNELS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/*
 * The path of a file holding exactly data (the same memfd each call, cut
 * to size). Aborts when the memfd cannot be made: a broken harness.
 */
const char	*fuzz_file(const uint8_t *data, size_t size);
/* A malloc'd NUL-terminated copy of data. */
char		*fuzz_str(const uint8_t *data, size_t size);

#endif
