/*
 * Small helpers shared by every module. Allocation failure aborts: a daemon
 * of this size has no sensible way to carry on without memory, and it
 * removes a whole class of untested error paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* Print a message and abort: only for out-of-memory. */
static void
util_oom(void)
{
	static const char msg[] = "tunnels: out of memory\n";

	(void)!fwrite(msg, 1, sizeof msg - 1, stderr);
	abort();
}

/* malloc that never returns NULL. */
void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		util_oom();
	return p;
}

/* calloc that never returns NULL. */
void *
xcalloc(size_t n, size_t sz)
{
	void	*p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		util_oom();
	return p;
}

/* realloc that never returns NULL. */
void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		util_oom();
	return p;
}

/* reallocarray that never returns NULL and checks the multiplication. */
void *
xreallocarray(void *p, size_t n, size_t sz)
{
	if (sz != 0 && n > SIZE_MAX / sz)
		util_oom();
	return xrealloc(p, n * sz);
}

/* strdup that never returns NULL. */
char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* strndup that never returns NULL. */
char *
xstrndup(const char *s, size_t n)
{
	char	*p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* vasprintf that never returns NULL. */
char *
xvasprintf(const char *fmt, va_list ap)
{
	char	*s;

	if (vasprintf(&s, fmt, ap) == -1)
		util_oom();
	return s;
}

/* asprintf that never returns NULL. */
char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/*
 * Length of the UTF-8 character at p (n bytes left) if it is well formed
 * and harmless to print, else 0. Refused: overlong forms, surrogates, C1
 * controls (U+0080-U+009F: CSI and friends for some terminals), the line
 * and paragraph separators (log viewers break lines there) and the bidi
 * overrides and isolates (they reorder what a reader sees).
 */
static size_t
str_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t	cp;
	size_t		len, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < 0xa0 || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return 0;
	return len;
}

/* Printable copy of untrusted bytes into dst (see util.h). */
char *
str_sanitize_buf(const void *data, size_t len, char *dst, size_t dstlen,
    int flags)
{
	const unsigned char	*p = data;
	size_t			 i = 0, o = 0, n, limit;
	int			 cut;

	if (dstlen == 0)
		return dst;
	/* Every input byte gives one output byte: the copy fits or not. */
	cut = len > dstlen - 1;
	/* Room for "..." after a cut, unless dst is too small for it. */
	limit = !cut ? len : dstlen - 1 >= 3 ? dstlen - 1 - 3 : dstlen - 1;
	while (i < limit) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			dst[o++] = (char)p[i++];
			continue;
		}
		if ((flags & STR_UTF8) &&
		    (n = str_utf8_len(p + i, len - i)) > 0) {
			/* Never split a character at the cut. */
			if (i + n > limit)
				break;
			memcpy(dst + o, p + i, n);
			o += n;
			i += n;
			continue;
		}
		dst[o++] = '?';
		i++;
	}
	if (cut && dstlen - 1 >= 3) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* Printable copy of untrusted bytes, cut at max (see util.h). */
char *
str_sanitize(const void *data, size_t len, size_t max)
{
	/* max bytes and "..." when cut, else all of them. */
	size_t	cap = len <= max ? len : max + 3;

	return str_sanitize_buf(data, len, xmalloc(cap + 1), cap + 1, 0);
}

/* Milliseconds on the monotonic clock (never jumps with wall time). */
int64_t
time_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Initialise an empty buffer (no allocation yet). */
void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof *b);
}

/* Release a buffer's memory and make it empty again. */
void
buf_clear(struct buf *b)
{
	free(b->mem);
	buf_init(b);
}

/* Make room for n more bytes after the data. */
static void
buf_reserve(struct buf *b, size_t n)
{
	if (b->off + b->len + n <= b->cap)
		return;
	/* Slide the data down first: cheaper than growing when mostly read. */
	if (b->off > 0) {
		memmove(b->mem, b->mem + b->off, b->len);
		b->off = 0;
		if (b->len + n <= b->cap)
			return;
	}
	while (b->cap < b->len + n)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->mem = xrealloc(b->mem, b->cap);
}

/* Append n bytes. */
void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->mem + b->off + b->len, p, n);
	b->len += n;
}

/* Append formatted text. */
void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->mem + b->off + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Drop n bytes from the front. */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

/* First byte of the data (valid while len > 0). */
char *
buf_data(const struct buf *b)
{
	return b->mem + b->off;
}

/* NUL-terminate the data and return it as a string. */
char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 1);
	b->mem[b->off + b->len] = '\0';
	return b->mem + b->off;
}
