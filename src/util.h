/*
 * Small helpers shared by every module: allocators that abort on OOM,
 * monotonic time, printable copies of untrusted text, a growable byte
 * buffer.
 */
#ifndef TUNNELS_UTIL_H
#define TUNNELS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*xvasprintf(const char *, va_list) __attribute__((format(printf, 1, 0)));

/*
 * A printable copy of untrusted bytes (a server's banner or message) for
 * logs and terminals: control and non-ASCII bytes become '?', at most max
 * bytes are kept ("..." marks a cut).
 */
char	*str_sanitize(const void *, size_t len, size_t max);

/* str_sanitize_buf() flags. */
#define STR_UTF8	0x01	/* keep well-formed UTF-8 (not C1 controls) */

/*
 * The same into dst (dstlen bytes, the NUL included): what no terminal or
 * log can misread. Every control byte (C0, DEL; with STR_UTF8 also C1 and
 * malformed sequences) becomes '?'; a cut is marked "..." and never splits
 * a character. Returns dst.
 */
char	*str_sanitize_buf(const void *, size_t len, char *dst, size_t dstlen,
	    int flags);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t	 time_now_ms(void);

/* Growable byte buffer; data lives in [off, off+len) of mem[0..cap). */
struct buf {
	char	*mem;
	size_t	 off;
	size_t	 len;
	size_t	 cap;
};

void	 buf_init(struct buf *);
void	 buf_clear(struct buf *);
void	 buf_append(struct buf *, const void *, size_t);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_consume(struct buf *, size_t);
char	*buf_data(const struct buf *);
char	*buf_cstr(struct buf *);

#endif
