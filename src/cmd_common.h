/*
 * What the subcommands share: exit codes, loading the config with every
 * problem printed, finding a server by name, printing output.
 */
#ifndef TUNNELS_CMD_COMMON_H
#define TUNNELS_CMD_COMMON_H

#include <sys/types.h>

#include "util.h"

struct config;

/* Exit codes (systemd.exec(5) meanings). */
#define CMD_EXIT_OK		0
#define CMD_EXIT_FAIL		1
#define CMD_EXIT_USAGE		2
#define CMD_EXIT_NOT_ALL_UP	3
#define CMD_EXIT_NOTCONFIGURED	6

/*
 * Load the config, printing every problem as FILE:LINE:COL: message;
 * NULL when invalid. check_files: also check the files it names (not
 * on the VPS, which has no identity file).
 */
struct config	*cmd_load_config(const char *path, int check_files);
/* Index of the server called name, or -1 after printing the known ones. */
ssize_t		 cmd_find_server(const struct config *, const char *path,
		    const char *name);
/* Write b to stdout; the exit code (a full disk is a failure). */
int		 cmd_print_buf(struct buf *b);
/* Print each line of warn to stderr as a warning. */
void		 cmd_print_warnings(struct buf *warn);

#endif
