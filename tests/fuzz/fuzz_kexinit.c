/*
 * libFuzzer target: the server's cleartext hello (text lines, banner,
 * first KEXINIT) as kexinit_feed sees it from the socket: fed in pieces
 * of sizes drawn from the input's first bytes, and also all at once. The
 * two must agree: how TCP splits the bytes must not change the result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kexinit.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* 1 if two optional strings are equal. */
static int
fuzz_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* One input: 4 bytes seeding the split, then what the server sent. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kexinit	 split, whole;
	uint32_t	 x = 0x9e3779b9;
	size_t		 off = 0, n, i;

	if (size >= 4) {
		x ^= (uint32_t)data[0] | (uint32_t)data[1] << 8 |
		    (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
		data += 4;
		size -= 4;
	}
	kexinit_init(&split);
	kexinit_init(&whole);
	while (off < size) {
		/* xorshift32: pieces of 1 to 64 bytes, sometimes the rest. */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		n = (x & 7) == 0 ? size - off : 1 + (x >> 8) % 64;
		if (n > size - off)
			n = size - off;
		(void)kexinit_feed(&split, data + off, n);
		off += n;
	}
	if (size > 0)
		(void)kexinit_feed(&whole, data, size);
	if (split.state != whole.state ||
	    !fuzz_same(split.banner, whole.banner) ||
	    !fuzz_same(split.pre_banner, whole.pre_banner))
		abort();
	for (i = 0; i < KEXINIT_NLISTS; i++)
		if (!fuzz_same(split.lists[i], whole.lists[i]))
			abort();
	kexinit_clear(&split);
	kexinit_clear(&whole);
	return 0;
}
