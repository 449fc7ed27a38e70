/*
 * Placeholder until the nginx generator lands.
 */
#include <stdio.h>

#include "cmd_nginx.h"

/* tunnels nginx (not yet implemented). */
int
cmd_nginx(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tunnels: nginx: not implemented yet\n");
	return 1;
}

/* tunnels server-setup (not yet implemented). */
int
cmd_server_setup(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tunnels: server-setup: not implemented yet\n");
	return 1;
}
