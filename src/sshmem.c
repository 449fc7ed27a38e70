/*
 * Per-session allocator for libssh2. Every block carries a small header
 * that links it into its session's list, so that after
 * libssh2_session_free() the blocks the library leaked can be freed too.
 * libssh2 1.11.1 leaks, for example, the derived MAC keys of every key
 * exchange that chooses AES-GCM (its integrated MAC's init never takes
 * ownership of the key); a daemon that reconnects for months must not
 * let that add up.
 *
 * The pool can also be capped: an allocation that would take its cost
 * past the cap fails (libssh2 then reports LIBSSH2_ERROR_ALLOC) and the
 * pool remembers it, so that the session can drop the connection with
 * the reason. A server can make libssh2 hold memory without bound (it
 * keeps every packet of an unknown type forever: docs/libssh2.md rule 7);
 * the cap turns that into one lost connection.
 */
#include <stdlib.h>
#include <string.h>

#include "sshmem.h"

/* glibc's malloc: a size word per chunk, chunks in 16-byte steps. */
#define SSHMEM_CHUNK_OVERHEAD	sizeof(size_t)
#define SSHMEM_CHUNK_ALIGN	16
#define SSHMEM_CHUNK_MIN	32

/* The header in front of each block; the union keeps the payload aligned. */
union sshmem_hdr {
	struct {
		union sshmem_hdr	*prev, *next;
		size_t			 size;
	} h;
	max_align_t			 align;
};

/* An empty pool. */
void
sshmem_init(struct sshmem *m)
{
	memset(m, 0, sizeof *m);
}

/* Limit the pool's cost; 0 lifts the limit. */
void
sshmem_set_cap(struct sshmem *m, size_t cap)
{
	m->cap = cap;
}

/*
 * What a block of n payload bytes costs on the heap: our header, the
 * allocator's size word, rounded up to its chunk size. An estimate of
 * glibc's, close enough that the sum follows the process's RSS.
 */
size_t
sshmem_block_cost(size_t n)
{
	size_t	c;

	if (n > (size_t)-1 - sizeof(union sshmem_hdr) -
	    SSHMEM_CHUNK_OVERHEAD - SSHMEM_CHUNK_ALIGN)
		return (size_t)-1;
	c = sizeof(union sshmem_hdr) + n + SSHMEM_CHUNK_OVERHEAD;
	c = (c + SSHMEM_CHUNK_ALIGN - 1) & ~(size_t)(SSHMEM_CHUNK_ALIGN - 1);
	return c < SSHMEM_CHUNK_MIN ? SSHMEM_CHUNK_MIN : c;
}

/*
 * 1 if a block of n bytes may be added while one of old bytes goes (0
 * for a new block); a refusal is remembered for the session to report.
 */
static int
sshmem_allowed(struct sshmem *m, size_t old, size_t n)
{
	size_t	add = sshmem_block_cost(n);
	size_t	rest = m->cost - (old ? sshmem_block_cost(old) : 0);

	/* Growing is checked; shrinking always goes (it frees). */
	if (m->cap == 0 || add <= m->cost - rest ||
	    (rest <= m->cap && add <= m->cap - rest))
		return 1;
	if (!m->over) {
		m->over = 1;
		m->refused = n;
	}
	return 0;
}

/* Link a fresh header into the pool and account for it. */
static void *
sshmem_link(struct sshmem *m, union sshmem_hdr *h, size_t n)
{
	h->h.size = n;
	h->h.prev = NULL;
	h->h.next = m->head;
	if (m->head != NULL)
		m->head->h.prev = h;
	m->head = h;
	m->bytes += n;
	m->cost += sshmem_block_cost(n);
	if (m->cost > m->cost_peak)
		m->cost_peak = m->cost;
	m->blocks++;
	if (m->bytes > m->peak)
		m->peak = m->bytes;
	return h + 1;
}

/* Unlink a header from the pool. */
static void
sshmem_unlink(struct sshmem *m, union sshmem_hdr *h)
{
	if (h->h.prev != NULL)
		h->h.prev->h.next = h->h.next;
	else
		m->head = h->h.next;
	if (h->h.next != NULL)
		h->h.next->h.prev = h->h.prev;
	m->bytes -= h->h.size;
	m->cost -= sshmem_block_cost(h->h.size);
	m->blocks--;
}

/* malloc for libssh2; NULL on failure (libssh2 reports ALLOC). */
void *
sshmem_alloc(struct sshmem *m, size_t n)
{
	union sshmem_hdr	*h;

	if (n > (size_t)-1 - sizeof *h || !sshmem_allowed(m, 0, n) ||
	    (h = malloc(sizeof *h + n)) == NULL)
		return NULL;
	return sshmem_link(m, h, n);
}

/* realloc for libssh2: the block keeps its place in the pool. */
void *
sshmem_realloc(struct sshmem *m, void *p, size_t n)
{
	union sshmem_hdr	*h, *nh;

	if (p == NULL)
		return sshmem_alloc(m, n);
	if (n > (size_t)-1 - sizeof *h)
		return NULL;
	h = (union sshmem_hdr *)p - 1;
	if (!sshmem_allowed(m, h->h.size, n))
		return NULL;
	sshmem_unlink(m, h);
	if ((nh = realloc(h, sizeof *h + n)) == NULL) {
		/* The old block is still valid: put it back. */
		(void)sshmem_link(m, h, h->h.size);
		return NULL;
	}
	return sshmem_link(m, nh, n);
}

/* free for libssh2. */
void
sshmem_free(struct sshmem *m, void *p)
{
	union sshmem_hdr	*h;

	if (p == NULL)
		return;
	h = (union sshmem_hdr *)p - 1;
	sshmem_unlink(m, h);
	free(h);
}

/* Free what is left (the session is gone); returns the block count. */
size_t
sshmem_release(struct sshmem *m)
{
	union sshmem_hdr	*h, *next;
	size_t			 n = m->blocks, cap = m->cap;

	for (h = m->head; h != NULL; h = next) {
		next = h->h.next;
		free(h);
	}
	/* Empty again, with the same cap and no refusal on record. */
	sshmem_init(m);
	m->cap = cap;
	return n;
}
