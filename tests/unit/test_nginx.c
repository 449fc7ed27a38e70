/*
 * Unit tests for nginx.c: each config in tests/unit/data/nginx/NAME.yaml
 * is rendered and compared byte for byte with its golden .conf file (the
 * integration tests prove that such output passes `nginx -t` and carries
 * traffic). TESTS_UPDATE_GOLDEN=1 rewrites the golden files instead of
 * comparing: review the diff before committing it.
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
#include "nginx.h"
#include "util.h"

/* The header of every golden file names this config and version. */
#define TEST_CONFIG_PATH	"/etc/tunnels/tunnels.yaml"
#define TEST_VERSION		"TEST"
#define TEST_OUT_DIR		"/etc/nginx/conf.d"

/* What a case renders. */
enum nginx_test_what {
	NGINX_TEST_ALL,		/* nginx_render: stdout */
	NGINX_TEST_DEFAULT,	/* nginx_render_default: 00-tunnels-default */
	NGINX_TEST_SERVER	/* nginx_render_server: tunnels-SERVER.conf */
};

/* One golden comparison. */
struct nginx_case {
	const char		*yaml;		/* data/nginx/YAML.yaml */
	const char		*golden;	/* data/nginx/GOLDEN.conf */
	enum nginx_test_what	 what;
	const char		*server;	/* --server, or the file's */
	int			 http_port;	/* 0: default */
	int			 https_port;	/* 0: default */
	int			 out_dir;	/* render as for -o DIR */
	int			 certs_missing;	/* cert_exists says no */
	const char		*want_warn;	/* complete warnings text */
};

static const struct nginx_case nginx_cases[] = {
	{ "plain", "plain", NGINX_TEST_ALL, NULL, 0, 0, 0, 0, "" },
	{ "plain", "plain.00-tunnels-default", NGINX_TEST_DEFAULT, NULL, 0, 0,
	  1, 0, "" },
	{ "letsencrypt", "letsencrypt", NGINX_TEST_ALL, NULL, 0, 0, 0, 0,
	  "" },
	{ "custom_tls", "custom_tls", NGINX_TEST_ALL, NULL, 0, 0, 0, 0, "" },
	{ "names", "names", NGINX_TEST_ALL, NULL, 0, 0, 0, 0, "" },
	{ "websocket_off", "websocket_off", NGINX_TEST_ALL, NULL, 0, 0, 0, 0,
	  "" },
	{ "body_size", "body_size", NGINX_TEST_ALL, NULL, 0, 0, 0, 0, "" },
	{ "remote", "remote", NGINX_TEST_ALL, NULL, 0, 0, 0, 0,
	  "tunnel any: skipped: remote port 0 cannot be proxied by a static "
	  "nginx config; give it a fixed port\n" },
	{ "letsencrypt", "ports", NGINX_TEST_ALL, NULL, 8080, 8443, 0, 0,
	  "" },
	{ "letsencrypt", "pending", NGINX_TEST_SERVER, "vps", 0, 0, 1, 1,
	  "tunnel blog: /etc/letsencrypt/live/blog.example.com/fullchain.pem "
	  "does not exist yet: serving only the ACME challenge on port 80; "
	  "run: certbot certonly --webroot -w /var/www/letsencrypt "
	  "--cert-name blog.example.com -d blog.example.com "
	  "-d www.blog.example.com --deploy-hook \"systemctl reload nginx\" "
	  "and regenerate\n"
	  "tunnel wild: /etc/letsencrypt/live/apps.example.com/fullchain.pem "
	  "does not exist yet: serving only the ACME challenge on port 80; "
	  "run: certbot certonly --manual --preferred-challenges dns "
	  "--cert-name apps.example.com -d *.apps.example.com "
	  "-d apps.example.com --deploy-hook \"systemctl reload nginx\" "
	  "and regenerate\n" },
	{ "multi", "multi-us", NGINX_TEST_ALL, "us", 0, 0, 0, 0, "" },
	{ "multi", "multi.00-tunnels-default", NGINX_TEST_DEFAULT, NULL, 0, 0,
	  1, 0, "" },
	{ "multi", "multi.tunnels-eu", NGINX_TEST_SERVER, "eu", 0, 0, 1, 0,
	  "" },
	{ "multi", "multi.tunnels-us", NGINX_TEST_SERVER, "us", 0, 0, 1, 0,
	  "" },
	{ "multi", "multi.tunnels-spare", NGINX_TEST_SERVER, "spare", 0, 0, 1,
	  0, "" },
};

/* Path of a data file: $TESTS_SRCDIR/unit/data/nginx/NAME.EXT. */
static char *
nginx_test_path(const char *name, const char *ext)
{
	const char	*src = getenv("TESTS_SRCDIR");

	return xasprintf("%s/unit/data/nginx/%s.%s",
	    src != NULL ? src : "tests", name, ext);
}

/* A whole file, NUL-terminated; *len gets its size. */
static char *
nginx_test_read(const char *path, size_t *len)
{
	struct buf	 b;
	char		 chunk[4096], *s;
	size_t		 n;
	FILE		*fp;

	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	*len = b.len;
	s = xstrndup(buf_cstr(&b), b.len);
	buf_clear(&b);
	return s;
}

/* Parse a data config without file checks; fails the test on errors. */
static struct config *
nginx_test_config(const char *name)
{
	struct config_errors	 errs;
	struct config		*cfg;
	char			*path, *text;
	size_t			 len;

	path = nginx_test_path(name, "yaml");
	text = nginx_test_read(path, &len);
	memset(&errs, 0, sizeof errs);
	cfg = config_parse(path, text, len, 0, &errs);
	if (cfg == NULL)
		config_errors_print(&errs, stderr);
	config_errors_clear(&errs);
	free(text);
	free(path);
	assert_non_null(cfg);
	return cfg;
}

/* cert_exists that says no: every certificate is still to be made. */
static int
nginx_test_no_cert(const char *path, void *arg)
{
	(void)path;
	(void)arg;
	return 0;
}

/* Render one case as the command would. */
static void
nginx_test_render(const struct nginx_case *c, const struct config *cfg,
    struct buf *out, struct buf *warn)
{
	struct nginx_options	 o;
	size_t			 si;

	nginx_options_init(&o);
	o.version = TEST_VERSION;
	o.config_path = TEST_CONFIG_PATH;
	if (c->http_port != 0)
		o.http_port = c->http_port;
	if (c->https_port != 0)
		o.https_port = c->https_port;
	if (c->out_dir)
		o.out_dir = TEST_OUT_DIR;
	if (c->certs_missing)
		o.cert_exists = nginx_test_no_cert;
	switch (c->what) {
	case NGINX_TEST_ALL:
		o.server = c->server;
		nginx_render(cfg, &o, out, warn);
		break;
	case NGINX_TEST_DEFAULT:
		nginx_render_default(cfg, &o, out);
		break;
	case NGINX_TEST_SERVER:
		for (si = 0; si < cfg->n_servers; si++)
			if (strcmp(cfg->servers[si].name, c->server) == 0)
				break;
		assert_true(si < cfg->n_servers);
		nginx_render_server(cfg, si, &o, out, warn);
		break;
	}
}

/* Write a golden file (TESTS_UPDATE_GOLDEN=1). */
static void
nginx_test_update(const char *path, const char *text, size_t len)
{
	FILE	*fp = fopen(path, "w");

	if (fp == NULL)
		fail_msg("cannot write %s", path);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	fprintf(stderr, "updated %s\n", path);
}

/* Every golden case: exact bytes and exact warnings. */
static void
test_nginx_golden(void **state)
{
	const struct nginx_case	*c;
	const char		*update = getenv("TESTS_UPDATE_GOLDEN");
	struct config		*cfg;
	struct buf		 out, warn;
	char			*path, *want;
	size_t			 i, len;

	(void)state;
	for (i = 0; i < ARRAY_LEN(nginx_cases); i++) {
		c = &nginx_cases[i];
		cfg = nginx_test_config(c->yaml);
		buf_init(&out);
		buf_init(&warn);
		nginx_test_render(c, cfg, &out, &warn);
		path = nginx_test_path(c->golden, "conf");
		if (update != NULL && strcmp(update, "1") == 0)
			nginx_test_update(path, buf_cstr(&out), out.len);
		want = nginx_test_read(path, &len);
		if (strcmp(buf_cstr(&out), want) != 0) {
			fprintf(stderr, "---- %s: got:\n%s---- end\n", path,
			    buf_cstr(&out));
			fail_msg("%s differs from the rendering of %s.yaml "
			    "(TESTS_UPDATE_GOLDEN=1 rewrites it)", path,
			    c->yaml);
		}
		assert_string_equal(buf_cstr(&warn), c->want_warn);
		free(want);
		free(path);
		buf_clear(&out);
		buf_clear(&warn);
		config_free(cfg);
	}
}

/* The pieces server-setup and the blocks share. */
static void
test_nginx_helpers(void **state)
{
	/* Tunnel of remote.yaml and its proxy_pass target. */
	static const char	*upstreams[][2] = {
		{ "six", "[::1]:4005" },
		{ "wide", "127.0.0.1:4006" },
		{ "widesix", "[::1]:4007" },
		{ "named", "localhost:4008" },
	};
	struct config		*cfg;
	const struct config_tunnel *t;
	char			*s, *cert, *key;
	size_t			 i;

	(void)state;
	cfg = nginx_test_config("remote");
	assert_null(nginx_upstream(config_tunnel_find(cfg, "any")));
	for (i = 0; i < ARRAY_LEN(upstreams); i++) {
		s = nginx_upstream(config_tunnel_find(cfg, upstreams[i][0]));
		assert_string_equal(s, upstreams[i][1]);
		free(s);
	}
	assert_true(nginx_any_tls(cfg));
	config_free(cfg);

	cfg = nginx_test_config("letsencrypt");
	t = config_tunnel_find(cfg, "wild");
	s = nginx_cert_name(t->nginx);
	assert_string_equal(s, "apps.example.com");
	free(s);
	nginx_cert_paths(t->nginx, &cert, &key);
	assert_string_equal(cert,
	    "/etc/letsencrypt/live/apps.example.com/fullchain.pem");
	assert_string_equal(key,
	    "/etc/letsencrypt/live/apps.example.com/privkey.pem");
	free(cert);
	free(key);
	s = nginx_certbot_command(config_tunnel_find(cfg, "blog")->nginx);
	assert_string_equal(s, "certbot certonly --webroot -w "
	    "/var/www/letsencrypt --cert-name blog.example.com -d "
	    "blog.example.com -d www.blog.example.com --deploy-hook "
	    "\"systemctl reload nginx\"");
	free(s);
	config_free(cfg);

	cfg = nginx_test_config("custom_tls");
	t = config_tunnel_find(cfg, "shop");
	nginx_cert_paths(t->nginx, &cert, &key);
	assert_string_equal(cert, "/etc/ssl/shop/fullchain.pem");
	assert_string_equal(key, "/etc/ssl/private/shop.key");
	free(cert);
	free(key);
	config_free(cfg);

	cfg = nginx_test_config("plain");
	assert_false(nginx_any_tls(cfg));
	config_free(cfg);
}

/* The same config renders the same bytes every time. */
static void
test_nginx_deterministic(void **state)
{
	struct nginx_options	 o;
	struct config		*cfg;
	struct buf		 a, b;

	(void)state;
	cfg = nginx_test_config("multi");
	nginx_options_init(&o);
	buf_init(&a);
	buf_init(&b);
	nginx_render(cfg, &o, &a, NULL);
	nginx_render(cfg, &o, &b, NULL);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(buf_cstr(&a), buf_cstr(&b), a.len);
	/* Config order: the eu blocks come before the us blocks. */
	assert_true(strstr(buf_cstr(&a), "eu.example.com") <
	    strstr(buf_cstr(&a), "us.example.com"));
	buf_clear(&a);
	buf_clear(&b);
	config_free(cfg);
}

/* Run the tests. */
int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_nginx_golden),
		cmocka_unit_test(test_nginx_helpers),
		cmocka_unit_test(test_nginx_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
