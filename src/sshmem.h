/*
 * The memory of one libssh2 session, allocated through the hooks of
 * libssh2_session_init_ex: the session knows what its library state
 * costs, can refuse to let it grow past a cap, and frees at its end
 * whatever the library forgot to.
 */
#ifndef TUNNELS_SSHMEM_H
#define TUNNELS_SSHMEM_H

#include <stddef.h>

union sshmem_hdr;

struct sshmem {
	union sshmem_hdr	*head;		/* every live block */
	size_t			 bytes;		/* held now (payload) */
	size_t			 blocks;
	size_t			 peak;
	/*
	 * What the blocks cost on the heap: payload, our header and the
	 * allocator's own per-chunk overhead. libssh2 keeps each packet in
	 * two small blocks, so for a flood of tiny packets this is several
	 * times the payload, and it is what the cap is measured against.
	 */
	size_t			 cost;
	size_t			 cost_peak;
	size_t			 cap;		/* cost limit; 0: none */
	int			 over;		/* an allocation was refused */
	size_t			 refused;	/* size of the first refused */
};

void	 sshmem_init(struct sshmem *);
/* Limit the cost (0: no limit); blocks held already are kept. */
void	 sshmem_set_cap(struct sshmem *, size_t cap);
/* What a block of n bytes costs on the heap (header included). */
size_t	 sshmem_block_cost(size_t n);
void	*sshmem_alloc(struct sshmem *, size_t);
void	*sshmem_realloc(struct sshmem *, void *, size_t);
void	 sshmem_free(struct sshmem *, void *);
/* Free every block still held; returns how many there were. */
size_t	 sshmem_release(struct sshmem *);

#endif
