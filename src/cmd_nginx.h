/*
 * `tunnels nginx`: server blocks for the nginx on the VPS, to stdout or
 * written atomically into a directory. It reads the config without the
 * file checks: it runs where the identity may not exist.
 */
#ifndef TUNNELS_CMD_NGINX_H
#define TUNNELS_CMD_NGINX_H

#define CMD_NGINX_USAGE \
	"nginx [-c FILE] [--server NAME] [-o DIR] [--http-port N] " \
	"[--https-port N]"

#define CMD_NGINX_HELP \
	"Write the nginx server blocks of the tunnels that have an nginx:\n" \
	"section: proxy_pass to the tunnel's listener on the server, the\n" \
	"forwarding headers, WebSocket upgrades, TLS (certbot paths or the\n" \
	"given files) with a port-80 block that redirects to https and\n" \
	"serves /.well-known/acme-challenge/ from the webroot.\n" \
	"\n" \
	"Without -o everything goes to stdout. With -o DIR (e.g.\n" \
	"/etc/nginx/conf.d) one file per server, tunnels-SERVER.conf, and\n" \
	"00-tunnels-default.conf (the $connection_upgrade map and a default\n" \
	"server answering 444 to unknown names) are replaced atomically.\n" \
	"Generated files of servers no longer in the config are reported,\n" \
	"never deleted. With -o, a tls: letsencrypt tunnel whose\n" \
	"certificate does not exist yet gets a port-80 block only (the ACME\n" \
	"challenge), so that nginx -t passes and certbot can run; run\n" \
	"tunnels nginx again afterwards.\n" \
	"Then: nginx -t && systemctl reload nginx\n" \
	"\n" \
	"  --server NAME    only the tunnels of this server\n" \
	"  --http-port N    listen on N instead of 80 (tests)\n" \
	"  --https-port N   listen on N instead of 443 (tests)\n" \
	"\n" \
	"Identity and known_hosts files are not needed. Exit 0 when\n" \
	"written, 2 on a usage error, 6 when the config is invalid, 1 when\n" \
	"a file cannot be written."

int	cmd_nginx(int argc, char **argv);

#endif
