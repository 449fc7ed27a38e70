/*
 * `tunnels nginx` and `tunnels server-setup`: what the VPS needs.
 */
#ifndef TUNNELS_CMD_NGINX_H
#define TUNNELS_CMD_NGINX_H

#define CMD_NGINX_USAGE	"nginx [-c FILE] [--server NAME] [-o DIR] " \
	"[--http-port N] [--https-port N]"
#define CMD_NGINX_HELP	"Write the nginx server blocks for the tunnels " \
	"that have an nginx: section."
#define CMD_SERVER_SETUP_USAGE	"server-setup [-c FILE] [--server NAME]"
#define CMD_SERVER_SETUP_HELP	"Print what the server needs: the " \
	"authorized_keys line, an sshd_config block, certbot commands."

int	cmd_nginx(int, char **);
int	cmd_server_setup(int, char **);

#endif
