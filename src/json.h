/*
 * Minimal JSON: a writer for the status document and a small parser for
 * the `tunnels status` client. Pure.
 */
#ifndef TUNNELS_JSON_H
#define TUNNELS_JSON_H

#include <stddef.h>

struct buf;

/* Append s as a JSON string literal, or null when s is NULL. */
void	 json_str(struct buf *, const char *s);

enum json_type {
	JSON_NULL = 0,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
};

struct json {
	enum json_type	 type;
	double		 num;		/* NUMBER, BOOL (0/1) */
	char		*str;		/* STRING */
	char		*key;		/* member name inside an OBJECT */
	struct json	*kids;		/* ARRAY/OBJECT members */
	size_t		 nkids;
};

/* Parse text; NULL with *cause on malformed input. */
struct json	*json_parse(const char *text, char **cause);
void		 json_free(struct json *);
/* Member of an object by name, or NULL. */
const struct json *json_get(const struct json *, const char *key);
/* String value of a member, or NULL if absent/not a string. */
const char	*json_get_str(const struct json *, const char *key);
/* Number value of a member, or dflt. */
double		 json_get_num(const struct json *, const char *key, double dflt);

#endif
