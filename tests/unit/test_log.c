/* test_log.c — the logger (common/log.c): the stderr line and its tags,
 * level filtering and mapping, the choice between stderr and journald, the
 * journald fields, and the fall-back to stderr when journald is gone.
 *
 * log_init() decides the destination once per process and a journald
 * failure is final, so every case runs in a child process whose fd 2 is a
 * temporary file; the parent reads the file and asserts. journald itself is
 * replaced by this file's sd_journal_sendv (a definition in the program
 * takes precedence over libsystemd's), which records the entries in shared
 * memory. Cases that need /run/systemd/journal/socket to exist (or to be
 * absent) build it in a private mount namespace (in a user namespace when
 * not root); they are skipped where that is not permitted. */
#include <errno.h>
#include <regex.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"

/* ------------------------------------------------------------ fake journald */

#define MAX_ENTRIES 16
#define MAX_FIELDS 12
#define FIELD_LEN 300

struct shared {
	int ret;                                /* what sd_journal_sendv returns */
	int calls;
	int nfields[MAX_ENTRIES];
	char field[MAX_ENTRIES][MAX_FIELDS][FIELD_LEN];
	int result[8];                          /* what a child observed */
	char skip_reason[128];
};
static struct shared *sh;

int sd_journal_sendv(const struct iovec *iov, int n);
int sd_journal_sendv(const struct iovec *iov, int n)
{
	int c = sh->calls++;
	if (c < MAX_ENTRIES) {
		sh->nfields[c] = n;
		for (int i = 0; i < n && i < MAX_FIELDS; i++) {
			size_t len = iov[i].iov_len < FIELD_LEN - 1 ? iov[i].iov_len : FIELD_LEN - 1;
			memcpy(sh->field[c][i], iov[i].iov_base, len);
			sh->field[c][i][len] = 0;
			/* What libsystemd needs to send it as a plain "KEY=VALUE\n" line. */
			if (memchr(iov[i].iov_base, '\n', iov[i].iov_len) || !memchr(iov[i].iov_base, '=', iov[i].iov_len))
				sh->result[7] = 1;
		}
	}
	return sh->ret;
}

/* Entry e's value of key, or NULL. */
static const char *jfield(int e, const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < sh->nfields[e] && i < MAX_FIELDS; i++)
		if (!strncmp(sh->field[e][i], key, kl) && sh->field[e][i][kl] == '=')
			return sh->field[e][i] + kl + 1;
	return NULL;
}

/* ------------------------------------------------------------ child harness */

enum ns { NS_NONE, NS_NO_SOCKET, NS_SOCKET };

/* A private mount namespace in which /run/systemd/journal is an empty
 * tmpfs, holding a bound datagram socket when with_socket. Nothing of it
 * outlives the child (creating the mount point on the host is harmless). */
static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	int r = fputs(text, f) < 0 ? -EIO : 0;
	if (fclose(f) != 0 && !r)
		r = -errno;
	return r;
}

/* Not root: a user namespace of our own, where we are (a mapped) root,
 * lets us mount too, where the kernel allows unprivileged ones. */
static int unshare_as_user(void)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -errno;
	char map[64];
	int r = write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
	if (!r)
		r = write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
	if (!r)
		r = write_file("/proc/self/gid_map", map);
	return r;
}

static int enter_ns(bool with_socket)
{
	if (unshare(CLONE_NEWNS) < 0) {
		int r = errno == EPERM ? unshare_as_user() : -errno;
		if (r < 0)
			return r;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	mkdir("/run", 0755);
	mkdir("/run/systemd", 0755);
	mkdir("/run/systemd/journal", 0755);
	if (mount("tmpfs", "/run/systemd/journal", "tmpfs", 0, "size=64k,mode=0755") < 0)
		return -errno;
	if (!with_socket)
		return 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return -errno;
	return 0;   /* fd stays open for the child's life: nothing reads it */
}

/* Runs body in a child (fd 2 on a temporary file, in the namespace ns);
 * returns what the child wrote to fd 2 (NUL-terminated, in out). Skips the
 * test when the namespace cannot be built. */
static const char *run_child(enum ns ns, void (*body)(void), char *out, size_t size)
{
	memset(sh, 0, sizeof *sh);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (ns != NS_NONE) {
			int r = enter_ns(ns == NS_SOCKET);
			if (r < 0) {
				snprintf(sh->skip_reason, sizeof sh->skip_reason,
					 "no private mount namespace (%s): needs root or user namespaces",
					 strerror(-r));
				_exit(77);
			}
		}
		dup2(fileno(tmp), STDERR_FILENO);
		/* Whatever the test runner's environment says, the child decides. */
		unsetenv("RTSPD_LOG_TARGET");
		unsetenv("JOURNAL_STREAM");
		body();
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		fclose(tmp);
		print_message("SKIP: %s\n", sh->skip_reason);
		skip();
	}
	assert_int_equal(WEXITSTATUS(st), 0);
	rewind(tmp);
	size_t n = fread(out, 1, size - 1, tmp);
	out[n] = 0;
	fclose(tmp);
	return out;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
	int r = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (r != 0)
		fail_msg("%s\ndoes not match\n%s", text, pattern);
}

#define TIME_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

/* ------------------------------------------------------------ stderr lines */

static void body_tags(void)
{
	setenv("RTSPD_LOG_TARGET", "stderr", 1);
	log_init("master", LOG_TRACE, true);
	sh->result[0] = log_to_journal();
	log_msg(LOG_INFO, "cam1", "10.0.0.1:5000", "plain %d", 42);
	log_tagged(LOG_WARN, &(struct log_tags){ .stream = "cam1", .client = "10.0.0.1:5000",
						 .session = "AB12", .worker_pid = 321 }, "all tags");
	log_tagged(LOG_ERROR, &(struct log_tags){ .session = "AB12" }, "session only");
	log_tagged(LOG_DEBUG, &(struct log_tags){ .worker_pid = 7 }, "worker only");
	log_tagged(LOG_TRACE, NULL, "no tags");
	log_set_stream("dflt");
	log_tagged(LOG_INFO, &(struct log_tags){ .client = "c" }, "default stream");
	log_tagged(LOG_INFO, &(struct log_tags){ .stream = "", .client = "", .session = "" }, "empty is absent");
	log_info("macro");
	sh->result[1] = (int)getpid();
}

static void test_stderr_tags(void **state)
{
	char out[8192];
	run_child(NS_NONE, body_tags, out, sizeof out);
	assert_false(sh->result[0]);
	assert_int_equal(sh->calls, 0);
	assert_int_equal(count_lines(out), 8);
	char re[4096];
	snprintf(re, sizeof re,
		 "^" TIME_RE " INFO  master\\[%1$d\\] stream=cam1 client=10\\.0\\.0\\.1:5000: plain 42\n"
		 TIME_RE " WARN  master\\[%1$d\\] stream=cam1 client=10\\.0\\.0\\.1:5000 session=AB12 worker=321: all tags\n"
		 TIME_RE " ERROR master\\[%1$d\\] session=AB12: session only\n"
		 TIME_RE " DEBUG master\\[%1$d\\] worker=7: worker only\n"
		 TIME_RE " TRACE master\\[%1$d\\]: no tags\n"
		 TIME_RE " INFO  master\\[%1$d\\] stream=dflt client=c: default stream\n"
		 TIME_RE " INFO  master\\[%1$d\\] stream=dflt: empty is absent\n"
		 TIME_RE " INFO  master\\[%1$d\\] stream=dflt: macro\n$",
		 sh->result[1]);
	assert_matches(out, re);
}

static void body_one_line(void)
{
	setenv("RTSPD_LOG_TARGET", "stderr", 1);
	log_init("worker", LOG_TRACE, true);
	log_tagged(LOG_INFO, &(struct log_tags){ .client = "evil\nclient", .session = "s\r1" },
		   "two\nlines\tand\x1b[31m red\x7f %s", "x\ny");
	/* Far longer than a line may be: cut, still one line. */
	char big[5000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	log_msg(LOG_INFO, NULL, NULL, "%s", big);
}

static void test_stderr_one_line(void **state)
{
	char out[16384];
	run_child(NS_NONE, body_one_line, out, sizeof out);
	assert_int_equal(count_lines(out), 2);
	assert_matches(out, "^" TIME_RE " INFO  worker\\[[0-9]+\\] client=evil client session=s 1: "
			    "two lines and\\?\\[31m red\\? x y\n");
	char *second = strchr(out, '\n') + 1;
	size_t len = strlen(second);
	assert_true(len <= 2048);
	assert_int_equal(second[len - 1], '\n');
	assert_matches(second, ": a+\n$");
}

static void body_levels(void)
{
	setenv("RTSPD_LOG_TARGET", "stderr", 1);
	log_init("master", LOG_WARN, true);
	sh->result[0] = log_enabled(LOG_INFO);
	sh->result[1] = log_enabled(LOG_WARN);
	log_info("hidden info");
	log_warn("shown warn");
	log_set_level(99);      /* clamped to FATAL */
	sh->result[2] = log_get_level();
	log_error("hidden error");
	log_set_level(-3);
	sh->result[3] = log_get_level();
	log_init("master", LOG_TRACE, false);
	log_error("disabled error");
	log_msg(LOG_FATAL, NULL, NULL, "fatal goes out even disabled");
}

static void test_levels(void **state)
{
	char out[4096];
	run_child(NS_NONE, body_levels, out, sizeof out);
	assert_false(sh->result[0]);
	assert_true(sh->result[1]);
	assert_int_equal(sh->result[2], LOG_FATAL);
	assert_int_equal(sh->result[3], LOG_TRACE);
	assert_int_equal(count_lines(out), 2);
	assert_matches(out, "^" TIME_RE " WARN  master\\[[0-9]+\\]: shown warn\n"
			    TIME_RE " FATAL master\\[[0-9]+\\]: fatal goes out even disabled\n$");
}

static void test_priority(void **state)
{
	assert_int_equal(log_priority(LOG_TRACE), 7);
	assert_int_equal(log_priority(LOG_DEBUG), 7);
	assert_int_equal(log_priority(LOG_INFO), 6);
	assert_int_equal(log_priority(LOG_WARN), 4);
	assert_int_equal(log_priority(LOG_ERROR), 3);
	assert_int_equal(log_priority(LOG_FATAL), 2);
	assert_int_equal(log_priority(-1), 7);
	assert_int_equal(log_priority(42), 2);
}

/* ------------------------------------------------------------ choosing journald */

/* "DEV:INODE" of the current fd 2, as systemd would set JOURNAL_STREAM. */
static void set_journal_stream(long ino_delta)
{
	struct stat st;
	fstat(STDERR_FILENO, &st);
	char v[64];
	snprintf(v, sizeof v, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino + ino_delta);
	setenv("JOURNAL_STREAM", v, 1);
}

static void body_detect(void)
{
	set_journal_stream(0);
	log_init("master", LOG_INFO, true);
	sh->result[0] = log_to_journal();
	set_journal_stream(1);          /* someone else's stream: our stderr was redirected */
	log_init("master", LOG_INFO, true);
	sh->result[1] = log_to_journal();
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init("master", LOG_INFO, true);
	sh->result[2] = log_to_journal();
	set_journal_stream(0);
	setenv("RTSPD_LOG_TARGET", "stderr", 1);   /* the override wins */
	log_init("master", LOG_INFO, true);
	sh->result[3] = log_to_journal();
	unsetenv("JOURNAL_STREAM");
	setenv("RTSPD_LOG_TARGET", "journal", 1);
	log_init("master", LOG_INFO, true);
	sh->result[4] = log_to_journal();
	setenv("RTSPD_LOG_TARGET", "auto", 1);
	log_init("master", LOG_INFO, true);
	sh->result[5] = log_to_journal();
}

static void test_detect_journal_stream(void **state)
{
	char out[4096];
	run_child(NS_SOCKET, body_detect, out, sizeof out);
	assert_true(sh->result[0]);
	assert_false(sh->result[1]);
	assert_false(sh->result[2]);
	assert_false(sh->result[3]);
	assert_true(sh->result[4]);
	assert_false(sh->result[5]);
	assert_string_equal(out, "");
	assert_int_equal(sh->calls, 0);
}

static void body_bad_target(void)
{
	setenv("RTSPD_LOG_TARGET", "syslog", 1);
	log_init("master", LOG_INFO, true);
	sh->result[0] = log_to_journal();
	log_info("still here");
	log_init("master", LOG_INFO, true);     /* said once, not at every log_init */
}

static void test_bad_target_value(void **state)
{
	char out[4096];
	run_child(NS_NONE, body_bad_target, out, sizeof out);
	assert_false(sh->result[0]);
	assert_matches(out, "^" TIME_RE " WARN  master\\[[0-9]+\\]: RTSPD_LOG_TARGET=syslog is not journal, stderr or auto: ignored\n"
			    TIME_RE " INFO  master\\[[0-9]+\\]: still here\n$");
}

/* ------------------------------------------------------------ journald entries */

static void body_fields(void)
{
	setenv("RTSPD_LOG_TARGET", "journal", 1);
	log_init("worker", LOG_DEBUG, true);
	log_set_stream("test");
	sh->result[0] = (int)getpid();
	log_msg(LOG_INFO, NULL, "10.0.0.1:5000", "hello %s", "journal");                  /* 0 */
	log_tagged(LOG_WARN, &(struct log_tags){ .stream = "other", .session = "AB12", .worker_pid = 77 },
		   "line\nbreak");                                                         /* 1 */
	log_trace("filtered out");
	log_debug("debug");                                                                /* 2 */
	log_error("error");                                                                /* 3 */
	log_init("master", LOG_DEBUG, true);
	log_set_stream(NULL);
	log_info("master line");                                                           /* 4 */
	log_tagged(LOG_INFO, &(struct log_tags){ .stream = "cam", .worker_pid = 4242 }, "about a worker"); /* 5 */
	log_msg(LOG_FATAL, NULL, NULL, "fatal");                                           /* 6 */
	log_info("%s", "");                                                                /* 7 */
}

static void test_journal_fields(void **state)
{
	char out[4096];
	run_child(NS_SOCKET, body_fields, out, sizeof out);
	assert_string_equal(out, "");           /* nothing went to stderr */
	assert_int_equal(sh->calls, 8);
	assert_int_equal(sh->result[7], 0);     /* every field a plain KEY=VALUE */
	char pid[16];
	snprintf(pid, sizeof pid, "%d", sh->result[0]);

	assert_string_equal(jfield(0, "MESSAGE"), "hello journal");
	assert_string_equal(jfield(0, "PRIORITY"), "6");
	assert_string_equal(jfield(0, "SYSLOG_IDENTIFIER"), "rtspd");
	assert_string_equal(jfield(0, "RTSPD_ROLE"), "worker");
	assert_string_equal(jfield(0, "STREAM"), "test");
	assert_string_equal(jfield(0, "CLIENT"), "10.0.0.1:5000");
	assert_string_equal(jfield(0, "WORKER_PID"), pid);
	assert_null(jfield(0, "SESSION"));
	assert_int_equal(sh->nfields[0], 7);

	assert_string_equal(jfield(1, "MESSAGE"), "line break");
	assert_string_equal(jfield(1, "PRIORITY"), "4");
	assert_string_equal(jfield(1, "STREAM"), "other");
	assert_string_equal(jfield(1, "SESSION"), "AB12");
	assert_string_equal(jfield(1, "WORKER_PID"), "77");
	assert_null(jfield(1, "CLIENT"));

	assert_string_equal(jfield(2, "MESSAGE"), "debug");
	assert_string_equal(jfield(2, "PRIORITY"), "7");
	assert_string_equal(jfield(3, "PRIORITY"), "3");

	assert_string_equal(jfield(4, "RTSPD_ROLE"), "master");
	assert_null(jfield(4, "STREAM"));
	assert_null(jfield(4, "WORKER_PID"));   /* the master is not a worker */
	assert_int_equal(sh->nfields[4], 4);
	assert_string_equal(jfield(5, "STREAM"), "cam");
	assert_string_equal(jfield(5, "WORKER_PID"), "4242");
	assert_string_equal(jfield(6, "PRIORITY"), "2");
	assert_string_equal(jfield(7, "MESSAGE"), "");
}

/* ------------------------------------------------------------ falling back */

static void body_send_fails(void)
{
	setenv("RTSPD_LOG_TARGET", "journal", 1);
	log_init("worker", LOG_INFO, true);
	log_set_stream("test");
	sh->result[0] = log_to_journal();
	sh->ret = -ECONNREFUSED;
	log_msg(LOG_INFO, NULL, "c1", "first");
	sh->result[1] = log_to_journal();
	log_msg(LOG_WARN, NULL, NULL, "second");
	/* A later log_init (the worker calls it twice) does not try again. */
	log_init("worker", LOG_INFO, true);
	sh->result[2] = log_to_journal();
	log_tagged(LOG_INFO, &(struct log_tags){ .session = "S1" }, "third");
}

static void test_fallback_after_send_failure(void **state)
{
	char out[4096];
	run_child(NS_SOCKET, body_send_fails, out, sizeof out);
	assert_true(sh->result[0]);
	assert_false(sh->result[1]);
	assert_false(sh->result[2]);
	assert_int_equal(sh->calls, 1);         /* tried once, then never again */
	assert_matches(out, "^" TIME_RE " WARN  worker\\[[0-9]+\\]: journald: Connection refused; logging to stderr from now on\n"
			    TIME_RE " INFO  worker\\[[0-9]+\\] stream=test client=c1: first\n"
			    TIME_RE " WARN  worker\\[[0-9]+\\] stream=test: second\n"
			    TIME_RE " INFO  worker\\[[0-9]+\\] stream=test session=S1: third\n$");
}

static void body_no_socket(void)
{
	setenv("RTSPD_LOG_TARGET", "journal", 1);
	log_init("master", LOG_INFO, true);
	sh->result[0] = log_to_journal();
	log_info("on stderr");
	log_init("master", LOG_INFO, true);
	log_info("still on stderr");
}

static void test_fallback_without_socket(void **state)
{
	char out[4096];
	run_child(NS_NO_SOCKET, body_no_socket, out, sizeof out);
	assert_false(sh->result[0]);
	assert_int_equal(sh->calls, 0);         /* libsystemd would have dropped them silently */
	assert_matches(out, "^" TIME_RE " WARN  master\\[[0-9]+\\]: journald: /run/systemd/journal/socket: "
			    "No such file or directory; logging to stderr from now on\n"
			    TIME_RE " INFO  master\\[[0-9]+\\]: on stderr\n"
			    TIME_RE " INFO  master\\[[0-9]+\\]: still on stderr\n$");
}

int main(void)
{
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stderr_tags),
		cmocka_unit_test(test_stderr_one_line),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_priority),
		cmocka_unit_test(test_detect_journal_stream),
		cmocka_unit_test(test_bad_target_value),
		cmocka_unit_test(test_journal_fields),
		cmocka_unit_test(test_fallback_after_send_failure),
		cmocka_unit_test(test_fallback_without_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
