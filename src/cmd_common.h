/*
 * What the subcommands share: exit codes, the common options, loading the
 * config with every problem printed, finding a server by name, printing
 * output.
 */
#ifndef TUNNELS_CMD_COMMON_H
#define TUNNELS_CMD_COMMON_H

#include <sys/types.h>

struct buf;
struct config;

/* Exit codes (systemd.exec(5) meanings). */
#define CMD_EXIT_OK		0
#define CMD_EXIT_FAIL		1
#define CMD_EXIT_USAGE		2
#define CMD_EXIT_NOT_ALL_UP	3
#define CMD_EXIT_NOTCONFIGURED	6

/* Print "usage: tunnels USAGE", a blank line and the help text. */
void		 cmd_help_print(const char *usage, const char *help);
/* What cmd_parse_common may accept besides -c FILE and --help. */
#define CMD_OPT_JSON		0x01	/* --json */
#define CMD_OPT_CONNECT		0x02	/* --connect */
#define CMD_OPT_OPERAND		0x04	/* one operand after the options */

/* The common options, as parsed. */
struct cmd_opts {
	const char	*path;		/* -c FILE, else CONFIG_DEFAULT_PATH */
	int		 json;		/* --json */
	int		 connect;	/* --connect */
	const char	*operand;	/* the operand, or NULL */
};

/*
 * Parse -c FILE, --help and what allow (CMD_OPT_*) names into *o.
 * Returns -1 when the command goes on, else the exit code it returns:
 * CMD_EXIT_OK after the help, CMD_EXIT_USAGE after the usage line.
 */
int		 cmd_parse_common(int argc, char **argv, const char *usage,
		    const char *help, int allow, struct cmd_opts *o);
/* Print the usage line; CMD_EXIT_USAGE. */
int		 cmd_usage_error(const char *usage);
/* The control socket path the config at path names; NULL after printing why. */
char		*cmd_control_path(const char *path);
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
