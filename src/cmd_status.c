/*
 * `tunnels status`: ask the daemon on its control socket and print its
 * document as two tables (servers, tunnels) or as the JSON it sent. The
 * document may carry anything a server sent: every cell is sanitised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_common.h"
#include "cmd_status.h"
#include "control.h"
#include "json.h"
#include "util.h"

/* How long `tunnels status` waits for the daemon. */
#define STATUS_TIMEOUT_MS	5000
/* Longest LAST ERROR shown in the status table (the JSON has it all). */
#define TABLE_ERROR_MAX		512

/* Human-readable byte count. */
static void
status_fmt_bytes(double v, char *out, size_t len)
{
	const char	*units = "BKMGTP";

	while (v >= 1024 && units[1] != '\0') {
		v /= 1024;
		units++;
	}
	if (*units == 'B')
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.1f%c", v, *units);
}

/* Human-readable duration. */
static void
status_fmt_secs(double s, char *out, size_t len)
{
	if (s < 120)
		snprintf(out, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(out, len, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(out, len, "%.0fh", s / 3600);
	else
		snprintf(out, len, "%.0fd", s / 86400);
}

/*
 * A JSON string member or "-", made safe for a terminal into buf (len
 * bytes): the document may carry anything a server sent, so no control
 * character or escape sequence reaches the screen and one cell stays on
 * one line, however long.
 */
static const char *
status_cell(const struct json *o, const char *key, char *buf, size_t len)
{
	const char	*s = json_get_str(o, key);

	if (s == NULL)
		return "-";
	return str_sanitize_buf(s, strlen(s), buf, len, STR_UTF8);
}

/* Print the servers table. */
static void
status_print_servers(const struct json *servers)
{
	const struct json	*o;
	char			 since[16], mem[16], name[64], state[32];
	char			 addr[160], err[TABLE_ERROR_MAX];
	size_t			 i;

	printf("%-16s %-10s %-24s %-6s %-7s %s\n", "SERVER", "STATE",
	    "ADDRESS", "SINCE", "MEMORY", "LAST ERROR");
	for (i = 0; servers != NULL && i < servers->nkids; i++) {
		o = &servers->kids[i];
		status_fmt_secs(json_get_num(o, "since_s", 0), since, sizeof since);
		/* What libssh2 holds for the server (max_session_memory). */
		status_fmt_bytes(json_get_num(o, "memory_bytes", 0), mem, sizeof mem);
		printf("%-16s %-10s %-24s %-6s %-7s %s\n",
		    status_cell(o, "name", name, sizeof name),
		    status_cell(o, "state", state, sizeof state),
		    status_cell(o, "address", addr, sizeof addr), since, mem,
		    status_cell(o, "last_error", err, sizeof err));
	}
}

/* Print the tunnels table; 1 when every tunnel is up. */
static int
status_print_tunnels(const struct json *tunnels)
{
	const struct json	*o;
	const char		*st;
	char			 since[16], in[16], out[16], conns[48];
	char			 name[64], server[64], state[32], addr[160];
	char			 local[160], err[TABLE_ERROR_MAX];
	size_t			 i;
	int			 all_up = 1;

	printf("\n%-16s %-12s %-22s %-26s %-10s %-6s %-10s %-7s %-7s %s\n",
	    "TUNNEL", "SERVER", "REMOTE", "LOCAL", "STATE", "SINCE",
	    "CONNS", "IN", "OUT", "LAST ERROR");
	for (i = 0; tunnels != NULL && i < tunnels->nkids; i++) {
		o = &tunnels->kids[i];
		st = status_cell(o, "state", state, sizeof state);
		if (strcmp(st, "up") != 0)
			all_up = 0;
		status_fmt_secs(json_get_num(o, "since_s", 0), since, sizeof since);
		status_fmt_bytes(json_get_num(o, "bytes_in", 0), in, sizeof in);
		status_fmt_bytes(json_get_num(o, "bytes_out", 0), out, sizeof out);
		snprintf(conns, sizeof conns, "%.0f/%.0f",
		    json_get_num(o, "active_connections", 0),
		    json_get_num(o, "total_connections", 0));
		printf("%-16s %-12s %-22s %-26s %-10s %-6s %-10s %-7s %-7s "
		    "%s\n", status_cell(o, "name", name, sizeof name),
		    status_cell(o, "server", server, sizeof server),
		    status_cell(o, "remote", addr, sizeof addr),
		    status_cell(o, "local", local, sizeof local), st, since,
		    conns, in, out, status_cell(o, "last_error", err,
		    sizeof err));
	}
	return all_up;
}

/* Print the status document as tables; returns the exit code. */
static int
status_print_table(const struct json *doc)
{
	char	err[TABLE_ERROR_MAX];
	int	all_up;

	status_print_servers(json_get(doc, "servers"));
	all_up = status_print_tunnels(json_get(doc, "tunnels"));
	if (json_get_str(doc, "reload_error") != NULL)
		printf("\nlast reload failed: %s\n",
		    status_cell(doc, "reload_error", err, sizeof err));
	return all_up ? CMD_EXIT_OK : CMD_EXIT_NOT_ALL_UP;
}

/* 1 when every tunnel in the document is up. */
static int
status_all_up(const struct json *doc)
{
	const struct json	*tunnels = json_get(doc, "tunnels");
	size_t			 i;
	const char		*st;

	for (i = 0; tunnels != NULL && i < tunnels->nkids; i++) {
		st = json_get_str(&tunnels->kids[i], "state");
		if (st == NULL || strcmp(st, "up") != 0)
			return 0;
	}
	return 1;
}

/* Fetch and parse the daemon's status document (see cmd_status.h). */
struct json *
cmd_status_fetch(const char *control, char **raw, long *peer)
{
	struct json	*doc;
	char		*text = NULL, *cause = NULL;

	if (control_query_peer(control, STATUS_TIMEOUT_MS, &text, peer,
	    &cause) == -1) {
		fprintf(stderr, "tunnels: %s\n", cause);
		free(cause);
		return NULL;
	}
	if ((doc = json_parse(text, &cause)) == NULL) {
		fprintf(stderr, "tunnels: bad answer from the daemon: %s\n",
		    cause);
		free(cause);
	}
	if (raw != NULL && doc != NULL)
		*raw = text;
	else
		free(text);
	return doc;
}

/* tunnels status: ask the daemon. */
int
cmd_status(int argc, char **argv)
{
	struct json	*doc;
	struct cmd_opts	 o;
	char		*control, *raw = NULL;
	int		 rc;

	if ((rc = cmd_parse_common(argc, argv, CMD_STATUS_USAGE,
	    CMD_STATUS_HELP, CMD_OPT_JSON, &o)) != -1)
		return rc;
	if ((control = cmd_control_path(o.path)) == NULL)
		return CMD_EXIT_NOTCONFIGURED;
	doc = cmd_status_fetch(control, &raw, NULL);
	free(control);
	if (doc == NULL)
		return CMD_EXIT_FAIL;
	if (o.json) {
		fputs(raw, stdout);
		rc = status_all_up(doc) ? CMD_EXIT_OK : CMD_EXIT_NOT_ALL_UP;
	} else
		rc = status_print_table(doc);
	json_free(doc);
	free(raw);
	return rc;
}
