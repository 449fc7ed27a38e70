/*
 * Unit tests for reclaim.c's commands and parsers: the strict parsing of
 * what the server prints, the sanitising of names, and the learn and kill
 * commands run through the real /bin/sh against real processes (this
 * test process and a forked child).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reclaim.h"

/* Run cmd with /bin/sh -c (popen); its stdout, at most len - 1 bytes. */
static size_t
run_sh(const char *cmd, char *out, size_t len)
{
	FILE	*fp = popen(cmd, "r");
	size_t	 n;

	assert_non_null(fp);
	n = fread(out, 1, len - 1, fp);
	out[n] = '\0';
	pclose(fp);
	return n;
}

/* Field 22 of /proc/PID/stat (start time), read here. */
static void
start_of(long pid, char *buf, size_t len)
{
	char	 path[64], line[1024], *p;
	FILE	*fp;
	int	 i;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	p = strrchr(line, ')');
	assert_non_null(p);
	p += 2;				/* field 3 */
	for (i = 3; i < 22; i++)
		p = strchr(p, ' ') + 1;
	snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
}

/* Good learn output parses; every field is checked. */
static void
test_parse_learn_ok(void **state)
{
	struct reclaim_proc	p;
	const char		*s = "4242 123456 1000 0 0 dropbear\n";

	(void)state;
	assert_int_equal(reclaim_parse_learn(s, strlen(s), &p), 0);
	assert_int_equal(p.pid, 4242);
	assert_string_equal(p.start, "123456");
	assert_int_equal(p.uid, 1000);
	assert_int_equal(p.owner, 0);
	assert_int_equal(p.saved, 0);
	assert_string_equal(p.name, "dropbear");
	s = "7 1 0 0 0 a) b c";		/* no newline; a name with spaces */
	assert_int_equal(reclaim_parse_learn(s, strlen(s), &p), 0);
	assert_string_equal(p.name, "a) b c");
	s = "7 1 0 0 0 sshd\x1b[2J\n";	/* control bytes never get through */
	assert_int_equal(reclaim_parse_learn(s, strlen(s), &p), 0);
	assert_string_equal(p.name, "sshd?[2J");
}

/* Anything else is refused: missing or extra fields, junk, overlong. */
static void
test_parse_learn_bad(void **state)
{
	static const char *const bad[] = {
		"", "\n", "4242\n", "4242 123\n", "4242 123 0 0 0\n",
		"4242 123 0 0 0 \n", "x 123 0 0 0 sshd\n",
		"4242 12x 0 0 0 sshd\n", "1 123 0 0 0 sshd\n",
		"0 123 0 0 0 sshd\n", "-5 123 0 0 0 sshd\n",
		"4242  123 0 0 0 sshd\n", "4242 123 0 0 0 sshd\nmore\n",
		"4242 123 0 0 0 sixteen-chars-xx\n",
		"1234567890 123 0 0 0 sshd\n",
		"4242 1234567890123456789012345 0 0 0 sshd\n",
		"4242 123 12345678901 0 0 sshd\n",
		"Welcome to the server!\n4242 123 0 0 0 sshd\n",
	};
	struct reclaim_proc	p;
	char			big[300];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(reclaim_parse_learn(bad[i], strlen(bad[i]),
		    &p), -1);
	/* A NUL inside the output. */
	assert_int_equal(reclaim_parse_learn("42 1 0 0 0 s\0hd\n", 16, &p),
	    -1);
	/* Longer than any real answer. */
	memset(big, '1', sizeof big);
	assert_int_equal(reclaim_parse_learn(big, sizeof big, &p), -1);
}

/* The kill command's words; "other NAME" sanitised; the rest is bad. */
static void
test_parse_kill(void **state)
{
	char	name[16];

	(void)state;
	assert_int_equal(reclaim_parse_kill("killed\n", 7, name, sizeof name),
	    RECLAIM_OUT_KILLED);
	assert_int_equal(reclaim_parse_kill("gone", 4, name, sizeof name),
	    RECLAIM_OUT_GONE);
	assert_int_equal(reclaim_parse_kill("denied\n", 7, name, sizeof name),
	    RECLAIM_OUT_DENIED);
	assert_int_equal(reclaim_parse_kill("shared\n", 7, name, sizeof name),
	    RECLAIM_OUT_SHARED);
	assert_int_equal(reclaim_parse_kill("other bash\n", 11, name,
	    sizeof name), RECLAIM_OUT_OTHER);
	assert_string_equal(name, "bash");
	assert_int_equal(reclaim_parse_kill("other \x07x\n", 9, name,
	    sizeof name), RECLAIM_OUT_OTHER);
	assert_string_equal(name, "?x");
	assert_int_equal(reclaim_parse_kill("other \n", 7, name, sizeof name),
	    RECLAIM_OUT_GONE);
	assert_int_equal(reclaim_parse_kill("killed\nkilled\n", 14, name,
	    sizeof name), RECLAIM_OUT_BAD);
	assert_int_equal(reclaim_parse_kill("killedx", 7, name, sizeof name),
	    RECLAIM_OUT_BAD);
	assert_int_equal(reclaim_parse_kill("", 0, name, sizeof name),
	    RECLAIM_OUT_BAD);
	assert_int_equal(reclaim_parse_kill("other 0123456789abcdef\n", 23,
	    name, sizeof name), RECLAIM_OUT_BAD);
}

/* Only the per-connection processes of known servers may be ended. */
static void
test_known_names(void **state)
{
	(void)state;
	assert_true(reclaim_known_name("sshd"));
	assert_true(reclaim_known_name("sshd-session"));
	assert_true(reclaim_known_name("dropbear"));
	assert_false(reclaim_known_name("python3"));
	assert_false(reclaim_known_name("sshd "));
	assert_false(reclaim_known_name(""));
}

/* The learn command, run by /bin/sh, names its parent: this process. */
static void
test_learn_command_real(void **state)
{
	struct reclaim_proc	p;
	char			out[256], start[24], comm[32];
	size_t			n;
	FILE			*fp;

	(void)state;
	n = run_sh(reclaim_learn_command(), out, sizeof out);
	assert_int_equal(reclaim_parse_learn(out, n, &p), 0);
	assert_int_equal(p.pid, (long)getpid());
	start_of(p.pid, start, sizeof start);
	assert_string_equal(p.start, start);
	assert_int_equal(p.uid, (long)getuid());
	assert_int_equal(p.owner, (long)getuid());
	fp = fopen("/proc/self/comm", "r");
	assert_non_null(fp);
	assert_non_null(fgets(comm, sizeof comm, fp));
	fclose(fp);
	comm[strcspn(comm, "\n")] = '\0';
	assert_string_equal(p.name, comm);
}

/* The kill command: other name, other start, shared, killed, gone. */
static void
test_kill_command_real(void **state)
{
	char	out[64], start[24], *cmd;
	pid_t	child;
	int	status;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	start_of(child, start, sizeof start);
	/* The child's comm is this test's: "sshd" does not match. */
	cmd = reclaim_kill_command(child, start, "sshd");
	run_sh(cmd, out, sizeof out);
	free(cmd);
	assert_int_equal(strncmp(out, "other ", 6), 0);
	assert_int_equal(kill(child, 0), 0);
	/* The right name, another start time: a reused PID. */
	cmd = reclaim_kill_command(child, "1", "test_reclaim");
	run_sh(cmd, out, sizeof out);
	free(cmd);
	assert_string_equal(out, "other test_reclaim\n");
	/* The shell's own parent is never signalled. */
	start_of(getpid(), out, sizeof out);
	cmd = reclaim_kill_command(getpid(), out, "test_reclaim");
	run_sh(cmd, out, sizeof out);
	free(cmd);
	assert_string_equal(out, "shared\n");
	/* Name and start match: ended. */
	cmd = reclaim_kill_command(child, start, "test_reclaim");
	run_sh(cmd, out, sizeof out);
	assert_string_equal(out, "killed\n");
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	run_sh(cmd, out, sizeof out);
	free(cmd);
	assert_string_equal(out, "gone\n");
}

/*
 * The kill command, pinned whole: the process-name and start-time guard,
 * the shared and gone cases, the one-word answers. A change here is a
 * change of what runs on every server (and of README.md and tunnels(8)).
 */
static void
test_kill_command_text(void **state)
{
	char	*cmd;

	(void)state;
	cmd = reclaim_kill_command(4242, "567406", "sshd-session");
	assert_string_equal(cmd,
	    "p=4242; if [ $p = $PPID ]; then echo shared; "
	    "elif [ ! -e /proc/$p/stat ]; then echo gone; "
	    "else n=$(cat /proc/$p/comm 2>/dev/null); "
	    "s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20); "
	    "if [ \"$n\" != sshd-session ] || [ \"$s\" != 567406 ]; "
	    "then echo \"other $n\"; "
	    "elif kill $p 2>/dev/null; then echo killed; "
	    "elif [ -e /proc/$p/stat ]; then echo denied; "
	    "else echo gone; fi; fi");
	free(cmd);
}

/* The file TESTS_SRCDIR/../REL, whole, troff escapes for ' and - undone. */
static char *
read_doc(const char *rel)
{
	const char	*dir = getenv("TESTS_SRCDIR");
	char		 path[4096], *buf, *r, *w;
	FILE		*fp;
	long		 n;

	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/../%s", dir, rel);
	fp = fopen(path, "r");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	for (r = w = buf; *r != '\0';) {
		if (strncmp(r, "\\(aq", 4) == 0) {
			*w++ = '\'';
			r += 4;
		} else if (strncmp(r, "\\-", 2) == 0) {
			*w++ = '-';
			r += 2;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return buf;
}

/* README.md and tunnels(8) quote the commands the daemon runs. */
static void
test_docs_quote_commands(void **state)
{
	static const char *const docs[] = { "README.md", "man/tunnels.8" };
	char	*kill, *tmpl, *doc;
	size_t	 i;

	(void)state;
	kill = reclaim_kill_command(123456789, "START", "NAME");
	assert_int_equal(strncmp(kill, "p=123456789;", 12), 0);
	tmpl = malloc(strlen(kill) + 1);
	assert_non_null(tmpl);
	snprintf(tmpl, strlen(kill) + 1, "p=PID;%s", kill + 12);
	for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		doc = read_doc(docs[i]);
		if (strstr(doc, reclaim_learn_command()) == NULL)
			fail_msg("%s does not quote the learn command: %s",
			    docs[i], reclaim_learn_command());
		if (strstr(doc, tmpl) == NULL)
			fail_msg("%s does not quote the kill command: %s",
			    docs[i], tmpl);
		free(doc);
	}
	free(tmpl);
	free(kill);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_parse_learn_ok),
		cmocka_unit_test(test_parse_learn_bad),
		cmocka_unit_test(test_parse_kill),
		cmocka_unit_test(test_known_names),
		cmocka_unit_test(test_learn_command_real),
		cmocka_unit_test(test_kill_command_real),
		cmocka_unit_test(test_kill_command_text),
		cmocka_unit_test(test_docs_quote_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
