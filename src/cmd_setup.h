/*
 * `tunnels server-setup`: the authorized_keys line, the sshd_config Match
 * block and the certbot commands the VPS needs, or the script that sets
 * them up. It reads the config without the file checks: it runs where
 * the identity may not exist.
 */
#ifndef TUNNELS_CMD_SETUP_H
#define TUNNELS_CMD_SETUP_H

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

int	cmd_server_setup(int argc, char **argv);

#endif
