/*
 * libFuzzer target: known_hosts files read the way the daemon reads them
 * (markers, pattern lists, negation, hashed names, key blobs). The first
 * byte picks the host name looked up, the rest is the file; the file's
 * first line is also matched as a pattern list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "knownhosts.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One input: a name selector byte, then the file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char	*host;
		int		 port;
	} names[] = {
		{ "127.0.0.1", 2222 }, { "h", 22 }, { "vps.example.com", 22 },
		{ "::1", 2200 }, { "Host.Example.COM", 65535 }, { "", 22 },
	};
	struct knownhosts	 kh;
	const uint8_t		*nl;
	char			*name, *cause = NULL;
	size_t			 i;

	if (size < 1)
		return 0;
	i = data[0] % (sizeof names / sizeof names[0]);
	data++;
	size--;
	name = knownhosts_name(names[i].host, names[i].port);
	if (knownhosts_load(fuzz_file(data, size), name, &kh, &cause) == 0) {
		for (i = 0; i < kh.n; i++)
			if (knownhosts_blob_type(kh.v[i].blob,
			    kh.v[i].bloblen) == NULL)
				abort();
		knownhosts_clear(&kh);
	} else
		free(cause);
	nl = memchr(data, '\n', size);
	(void)knownhosts_match_list(name, (const char *)data,
	    nl != NULL ? (size_t)(nl - data) : size);
	free(name);
	return 0;
}
