/*
 * The memory of one libssh2 session, allocated through the hooks of
 * libssh2_session_init_ex: the session knows what its library state
 * costs, and frees at its end whatever the library forgot to.
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
};

void	 sshmem_init(struct sshmem *);
void	*sshmem_alloc(struct sshmem *, size_t);
void	*sshmem_realloc(struct sshmem *, void *, size_t);
void	 sshmem_free(struct sshmem *, void *);
/* Free every block still held; returns how many there were. */
size_t	 sshmem_release(struct sshmem *);

#endif
