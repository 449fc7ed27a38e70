/*
 * The server-side subcommands: `tunnels nginx` (server blocks for the
 * nginx on the VPS, to stdout or written atomically into a directory) and
 * `tunnels server-setup` (the authorized_keys line, the sshd_config Match
 * block and the certbot commands the VPS needs, or the script that sets
 * them up). Both read the config
 * without the file checks: they run where the identity may not exist.
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

#define CMD_SERVER_SETUP_USAGE \
	"server-setup [-c FILE] [--server NAME] [--script [--home NAME] " \
	"[--email ADDRESS]]"

#define CMD_SERVER_SETUP_HELP \
	"Print what the SSH server needs, for one server or every server:\n" \
	"the authorized_keys line for the identity's public key, limited\n" \
	"to exactly the configured remote ports (permitlisten=), in the\n" \
	"variant that matches reclaim_stale_port (with and without command\n" \
	"execution); an sshd_config Match User block; the certbot commands\n" \
	"for the tls: letsencrypt names. The output is commented and ready\n" \
	"to paste.\n" \
	"\n" \
	"With --script, a POSIX sh script instead, for one server: run as\n" \
	"root there, it makes the server what this config needs and\n" \
	"changes nothing else (the account, its authorized_keys line, an\n" \
	"sshd drop-in, the nginx server blocks, the ACME webroot and\n" \
	"certificates), tests sshd and nginx before reloading them, and\n" \
	"prints the server's host keys as known_hosts lines:\n" \
	"  tunnels server-setup --script | ssh root@SERVER sh > known_hosts.new\n" \
	"Run it again after every change to the config.\n" \
	"\n" \
	"  --server NAME      only this server (--script: required when the\n" \
	"                     config has several)\n" \
	"  --script           the converging script\n" \
	"  --home NAME        this home's name in the server's file names and\n" \
	"                     key tag (default: the host name, plus -CONFIG\n" \
	"                     for a config other than tunnels.yaml)\n" \
	"  --email ADDRESS    let the script register with the ACME CA and\n" \
	"                     agree to its terms, so certbot runs unattended\n" \
	"\n" \
	"The public key is read from the identity (OpenSSH format), else\n" \
	"from IDENTITY.pub; the key's comment from IDENTITY.pub. Exit 0, 2\n" \
	"on a usage error, 6 when the config is invalid, 1 when no public\n" \
	"key can be found."

int	cmd_nginx(int argc, char **argv);
int	cmd_server_setup(int argc, char **argv);

#endif
