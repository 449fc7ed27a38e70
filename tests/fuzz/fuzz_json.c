/*
 * libFuzzer target: the status-JSON reader of `tunnels status` and
 * `tunnels reload` (what a process on the control socket may send), and
 * the writer's strings read back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Visit every value as the status table does: members by name. */
static void
fuzz_json_walk(const struct json *v)
{
	size_t	i;

	if (v->type == JSON_OBJECT) {
		(void)json_get_str(v, "name");
		(void)json_get_str(v, "state");
		(void)json_get_num(v, "pid", 0);
		for (i = 0; i < v->nkids; i++)
			if (v->kids[i].key == NULL ||
			    json_get(v, v->kids[i].key) == NULL)
				abort();
	}
	for (i = 0; i < v->nkids; i++)
		fuzz_json_walk(&v->kids[i]);
}

/* One input: a document as the control socket would deliver it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json	*doc;
	struct buf	 b;
	char		*text, *cause = NULL;

	text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if ((doc = json_parse(text, &cause)) != NULL) {
		fuzz_json_walk(doc);
		json_free(doc);
	} else
		free(cause);
	/* Whatever json_str writes, json_parse reads back as it was. */
	buf_init(&b);
	json_str(&b, text);
	cause = NULL;
	if ((doc = json_parse(buf_cstr(&b), &cause)) == NULL ||
	    doc->type != JSON_STRING || strcmp(doc->str, text) != 0)
		abort();
	json_free(doc);
	buf_clear(&b);
	free(text);
	return 0;
}
