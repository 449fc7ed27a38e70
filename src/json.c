/*
 * Minimal JSON writer and parser. The parser is a plain recursive descent
 * over a NUL-terminated string, enough for documents we produce ourselves.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

#define JSON_MAX_DEPTH	32

struct json_parser {
	const char	*p;
	char		*cause;
	int		 depth;
};

/* Append s as a quoted, escaped JSON string (or null). */
void
json_str(struct buf *b, const char *s)
{
	const unsigned char	*u;

	if (s == NULL) {
		buf_printf(b, "null");
		return;
	}
	buf_append(b, "\"", 1);
	for (u = (const unsigned char *)s; *u != '\0'; u++) {
		switch (*u) {
		case '"':
			buf_append(b, "\\\"", 2);
			break;
		case '\\':
			buf_append(b, "\\\\", 2);
			break;
		case '\n':
			buf_append(b, "\\n", 2);
			break;
		case '\t':
			buf_append(b, "\\t", 2);
			break;
		case '\r':
			buf_append(b, "\\r", 2);
			break;
		default:
			if (*u < 0x20)
				buf_printf(b, "\\u%04x", *u);
			else
				buf_append(b, u, 1);
		}
	}
	buf_append(b, "\"", 1);
}

/* Skip whitespace. */
static void
json_skip(struct json_parser *jp)
{
	while (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' ||
	    *jp->p == '\t')
		jp->p++;
}

/* Record the first parse error. */
static void
json_fail(struct json_parser *jp, const char *what)
{
	if (jp->cause == NULL)
		jp->cause = xasprintf("invalid JSON: %s near \"%.20s\"", what,
		    jp->p);
}

/* Parse a string literal at jp->p (after checking the quote). */
static char *
json_parse_string(struct json_parser *jp)
{
	struct buf	 b;
	unsigned	 cp;
	char		*s;

	buf_init(&b);
	jp->p++;
	while (*jp->p != '"') {
		if (*jp->p == '\0') {
			json_fail(jp, "unterminated string");
			buf_clear(&b);
			return NULL;
		}
		if (*jp->p != '\\') {
			buf_append(&b, jp->p++, 1);
			continue;
		}
		jp->p++;
		switch (*jp->p) {
		case 'n':
			buf_append(&b, "\n", 1);
			break;
		case 't':
			buf_append(&b, "\t", 1);
			break;
		case 'r':
			buf_append(&b, "\r", 1);
			break;
		case 'b':
			buf_append(&b, "\b", 1);
			break;
		case 'f':
			buf_append(&b, "\f", 1);
			break;
		case 'u':
			/*
			 * Only what json_str emits: control characters, as
			 * exactly four hex digits (sscanf alone would take
			 * fewer, and the skip below would pass the NUL).
			 */
			if (strspn(jp->p + 1, "0123456789abcdefABCDEF") < 4 ||
			    sscanf(jp->p + 1, "%4x", &cp) != 1 || cp > 0x7f) {
				json_fail(jp, "unsupported \\u escape");
				buf_clear(&b);
				return NULL;
			}
			buf_append(&b, (char[]){ (char)cp }, 1);
			jp->p += 4;
			break;
		case '\0':
			json_fail(jp, "bad escape");
			buf_clear(&b);
			return NULL;
		default:
			buf_append(&b, jp->p, 1);
		}
		jp->p++;
	}
	jp->p++;
	/* A right-sized copy; an empty string never allocated b.mem. */
	s = xstrndup(b.len ? buf_data(&b) : "", b.len);
	buf_clear(&b);
	return s;
}

static struct json	*json_parse_value(struct json_parser *);

/* Parse an array or object body into v. */
static int
json_parse_members(struct json_parser *jp, struct json *v, char close)
{
	struct json	*kid;
	char		*key = NULL;

	jp->p++;
	json_skip(jp);
	if (*jp->p == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		json_skip(jp);
		if (close == '}') {
			if (*jp->p != '"') {
				json_fail(jp, "expected a member name");
				return -1;
			}
			if ((key = json_parse_string(jp)) == NULL)
				return -1;
			json_skip(jp);
			/* Never step over the terminating NUL. */
			if (*jp->p != ':') {
				free(key);
				json_fail(jp, "expected ':'");
				return -1;
			}
			jp->p++;
		}
		if ((kid = json_parse_value(jp)) == NULL) {
			free(key);
			return -1;
		}
		kid->key = key;
		key = NULL;
		v->kids = xreallocarray(v->kids, v->nkids + 1, sizeof *v->kids);
		v->kids[v->nkids++] = *kid;
		free(kid);
		json_skip(jp);
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p == close) {
			jp->p++;
			return 0;
		}
		json_fail(jp, "expected ',' or a closing bracket");
		return -1;
	}
}

/* Parse one value. */
static struct json *
json_parse_value(struct json_parser *jp)
{
	struct json	*v = xcalloc(1, sizeof *v);
	char		*end;

	json_skip(jp);
	if (++jp->depth > JSON_MAX_DEPTH) {
		json_fail(jp, "nested too deeply");
		goto fail;
	}
	switch (*jp->p) {
	case '{':
	case '[':
		v->type = *jp->p == '{' ? JSON_OBJECT : JSON_ARRAY;
		if (json_parse_members(jp, v, *jp->p == '{' ? '}' : ']') == -1)
			goto fail;
		break;
	case '"':
		v->type = JSON_STRING;
		if ((v->str = json_parse_string(jp)) == NULL)
			goto fail;
		break;
	case 't':
	case 'f':
	case 'n':
		if (strncmp(jp->p, "true", 4) == 0) {
			v->type = JSON_BOOL;
			v->num = 1;
			jp->p += 4;
		} else if (strncmp(jp->p, "false", 5) == 0) {
			v->type = JSON_BOOL;
			jp->p += 5;
		} else if (strncmp(jp->p, "null", 4) == 0)
			jp->p += 4;
		else {
			json_fail(jp, "unexpected word");
			goto fail;
		}
		break;
	default:
		v->type = JSON_NUMBER;
		/* strtod also takes "nan", "inf" and "0x1p3": not JSON. */
		if (*jp->p != '-' && (*jp->p < '0' || *jp->p > '9')) {
			json_fail(jp, "unexpected character");
			goto fail;
		}
		v->num = strtod(jp->p, &end);
		if (end == jp->p || !isfinite(v->num) ||
		    strcspn(jp->p, "xX") < (size_t)(end - jp->p)) {
			json_fail(jp, "unexpected character");
			goto fail;
		}
		jp->p = end;
	}
	jp->depth--;
	return v;
fail:
	json_free(v);
	return NULL;
}

/* Parse a whole document. */
struct json *
json_parse(const char *text, char **cause)
{
	struct json_parser	 jp = { text, NULL, 0 };
	struct json		*v;

	v = json_parse_value(&jp);
	if (v != NULL) {
		json_skip(&jp);
		if (*jp.p != '\0') {
			json_fail(&jp, "trailing characters");
			json_free(v);
			v = NULL;
		}
	}
	if (v == NULL)
		*cause = jp.cause;
	return v;
}

/* Free a value's contents (not the value itself). */
static void
json_clear(struct json *v)
{
	size_t	i;

	for (i = 0; i < v->nkids; i++)
		json_clear(&v->kids[i]);
	free(v->kids);
	free(v->str);
	free(v->key);
}

/* Free a parsed document. */
void
json_free(struct json *v)
{
	if (v == NULL)
		return;
	json_clear(v);
	free(v);
}

/* Member of an object, or NULL. */
const struct json *
json_get(const struct json *v, const char *key)
{
	size_t	i;

	if (v == NULL || v->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < v->nkids; i++)
		if (v->kids[i].key != NULL && strcmp(v->kids[i].key, key) == 0)
			return &v->kids[i];
	return NULL;
}

/* String member, or NULL. */
const char *
json_get_str(const struct json *v, const char *key)
{
	const struct json	*m = json_get(v, key);

	return m != NULL && m->type == JSON_STRING ? m->str : NULL;
}

/* Number member, or dflt. */
double
json_get_num(const struct json *v, const char *key, double dflt)
{
	const struct json	*m = json_get(v, key);

	return m != NULL && (m->type == JSON_NUMBER || m->type == JSON_BOOL) ?
	    m->num : dflt;
}
