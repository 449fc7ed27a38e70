/*
 * Unit tests of setup_script.c: home names, tags and file stems, the
 * authorized_keys line, and the script's generated part (values quoted
 * for sh, both variants of a letsencrypt tunnel, the fixed library at the
 * end).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "setup_script.h"
#include "util.h"

#define TEST_PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBkIMJ5tEsZ0kR5x1RIKp" \
		 "p07ts4eJK7evvY8Jr4ym4nB"

#define TEST_END "t_main >&2\nt_hostkeys\n"

static const char test_yaml[] =
	"servers:\n"
	"  vps:\n"
	"    host: proxy.example.com\n"
	"    port: 2222\n"
	"    user: tunnel\n"
	"    identity: /etc/tunnels/id_ed25519\n"
	"    known_hosts: /etc/tunnels/known_hosts\n"
	"tunnels:\n"
	"  - name: blog\n"
	"    remote: 4001\n"
	"    local: 1313\n"
	"    nginx:\n"
	"      server_name: [blog.example.com]\n"
	"      tls: letsencrypt\n"
	"  - name: six\n"
	"    remote: \"[::1]:4002\"\n"
	"    local: 1314\n";

/* The test config, parsed without file checks. */
static struct config *
test_config(void)
{
	struct config_errors	 errs;
	struct config		*cfg;

	memset(&errs, 0, sizeof errs);
	cfg = config_parse("t.yaml", test_yaml, strlen(test_yaml), 0, &errs);
	if (cfg == NULL)
		config_errors_print(&errs, stderr);
	config_errors_clear(&errs);
	assert_non_null(cfg);
	return cfg;
}

/* Home names: checked as given, cleaned when derived. */
static void
test_setup_names(void **state)
{
	char	long_name[SETUP_HOME_MAX + 2], *s;

	(void)state;
	assert_true(setup_home_ok("home1"));
	assert_true(setup_home_ok("my-host.lan_2"));
	assert_false(setup_home_ok(""));
	assert_false(setup_home_ok(".hidden"));
	assert_false(setup_home_ok("a b"));
	assert_false(setup_home_ok("a/b"));
	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_false(setup_home_ok(long_name));
	s = setup_home_from("my host/x");
	assert_string_equal(s, "my-host-x");
	free(s);
	s = setup_home_from(long_name);
	assert_int_equal(strlen(s), SETUP_HOME_MAX);
	free(s);
	s = setup_tag("h", "v p");
	assert_string_equal(s, "tunnels:h/v-p");
	free(s);
	s = setup_stem("h", "vps");
	assert_string_equal(s, "tunnels-h-vps");
	free(s);
}

/* Specs in config order; the key line with and without a comment. */
static void
test_setup_key_line(void **state)
{
	struct config	*cfg = test_config();
	struct buf	 b;
	char		**specs;
	size_t		 n;

	(void)state;
	n = setup_listen_specs(cfg, 0, &specs);
	assert_int_equal(n, 2);
	assert_string_equal(specs[0], "127.0.0.1:4001");
	assert_string_equal(specs[1], "[::1]:4002");
	buf_init(&b);
	setup_key_line(&b, specs, n, 1, TEST_PUB, "me@laptop key",
	    "tunnels:h/vps");
	assert_string_equal(buf_cstr(&b), "restrict,port-forwarding,"
	    "permitlisten=\"127.0.0.1:4001\",permitlisten=\"[::1]:4002\" "
	    TEST_PUB " me@laptop key tunnels:h/vps\n");
	buf_clear(&b);
	setup_key_line(&b, specs, 0, 0, TEST_PUB, NULL, "tunnels:h/vps");
	assert_string_equal(buf_cstr(&b), "restrict,command=\"/bin/false\" "
	    TEST_PUB " tunnels:h/vps\n");
	buf_clear(&b);
	setup_sshd_block(&b, cfg, 0, specs, n);
	assert_non_null(strstr(buf_cstr(&b), "Match User tunnel\n"));
	assert_non_null(strstr(buf_cstr(&b),
	    "\tPermitListen 127.0.0.1:4001 [::1]:4002\n"));
	assert_non_null(strstr(buf_cstr(&b), "\tGatewayPorts no\n"));
	buf_clear(&b);
	setup_specs_free(specs, n);
	config_free(cfg);
}

/* The script: values single-quoted, both TLS variants, the library. */
static void
test_setup_script(void **state)
{
	struct setup_script_opts	 so;
	struct config			*cfg = test_config();
	struct buf			 b, warn;
	const char			*s;

	(void)state;
	memset(&so, 0, sizeof so);
	so.version = "TEST";
	so.config_path = "/etc/tunnels/tunnels.yaml";
	so.home = "h";
	so.pub = TEST_PUB;
	so.comment = "it's me";
	so.email = "a@b.example";
	buf_init(&b);
	buf_init(&warn);
	setup_script_render(cfg, 0, &so, &b, &warn);
	s = buf_cstr(&b);
	assert_true(strncmp(s, "#!/bin/sh\n", 10) == 0);
	assert_non_null(strstr(s, "\nset -eu\n"));
	assert_non_null(strstr(s, "\nT_TAG='tunnels:h/vps'\n"));
	assert_non_null(strstr(s, "\nT_USER='tunnel'\n"));
	/* known_hosts names a server on another port as [host]:port. */
	assert_non_null(strstr(s, "\nT_HOSTSPEC='[proxy.example.com]:2222'\n"));
	assert_non_null(strstr(s, "\nT_EMAIL='a@b.example'\n"));
	assert_non_null(strstr(s,
	    "\nT_NGINX_FILE='/etc/nginx/conf.d/tunnels-h-vps.conf'\n"));
	/* A quoted here-doc carries the comment as it is. */
	assert_non_null(strstr(s, " it's me tunnels:h/vps\n"));
	assert_non_null(strstr(s, "<<'TUNNELS_EOF_0'\n"));
	/* The certificate on the server picks the blocks. */
	assert_non_null(strstr(s, "if [ -e '/etc/letsencrypt/live/"
	    "blog.example.com/fullchain.pem' ]; then cat \"$WORK/nginx.1.tls\"; "
	    "else cat \"$WORK/nginx.1.pending\"; fi\n"));
	assert_non_null(strstr(s, "\tt_cert 'blog' "));
	assert_non_null(strstr(s, "\tt_webroot '/var/www/letsencrypt'\n"));
	assert_non_null(strstr(s, "# regenerate with: tunnels server-setup "
	    "--script -c /etc/tunnels/tunnels.yaml --server vps --home h"));
	/* The shared catch-all names no config. */
	assert_non_null(strstr(s, "# Generated by tunnels TEST -- do not edit; "
	    "shared by every tunnels config\n"));
	/* The fixed library closes it. */
	assert_true(b.len > strlen(TEST_END) &&
	    strcmp(s + b.len - strlen(TEST_END), TEST_END) == 0);
	assert_int_equal(warn.len, 0);
	buf_clear(&warn);
	buf_clear(&b);
	config_free(cfg);
}

/* Run the tests. */
int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_setup_names),
		cmocka_unit_test(test_setup_key_line),
		cmocka_unit_test(test_setup_script),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
