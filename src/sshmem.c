/*
 * Per-session allocator for libssh2. Every block carries a small header
 * that links it into its session's list, so that after
 * libssh2_session_free() the blocks the library leaked can be freed too.
 * libssh2 1.11.1 leaks, for example, the derived MAC keys of every key
 * exchange that chooses AES-GCM (its integrated MAC's init never takes
 * ownership of the key); a daemon that reconnects for months must not
 * let that add up.
 */
#include <stdlib.h>
#include <string.h>

#include "sshmem.h"

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
	m->blocks--;
}

/* malloc for libssh2; NULL on failure (libssh2 reports ALLOC). */
void *
sshmem_alloc(struct sshmem *m, size_t n)
{
	union sshmem_hdr	*h;

	if (n > (size_t)-1 - sizeof *h || (h = malloc(sizeof *h + n)) == NULL)
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
	size_t			 n = m->blocks;

	for (h = m->head; h != NULL; h = next) {
		next = h->h.next;
		free(h);
	}
	sshmem_init(m);
	return n;
}
