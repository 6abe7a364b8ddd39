/* test_ctl.c — unit tests of the control protocol's request parser and
 * command table (proto/ctl.c) and of the text buffer the answers are built
 * in (common/strbuf.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/strbuf.h"
#include "proto/ctl.h"

static void test_parse_words(void **state)
{
	(void)state;
	const char *w[CTL_MAX_WORDS];
	static const char req[] = "status\0--json";   /* the literal adds the last NUL */
	assert_int_equal(ctl_parse_request(req, sizeof req, w), 2);
	assert_string_equal(w[0], "status");
	assert_string_equal(w[1], "--json");
	static const char one[] = "stop";
	assert_int_equal(ctl_parse_request(one, sizeof one, w), 1);
	assert_string_equal(w[0], "stop");
}

static void test_parse_bad(void **state)
{
	(void)state;
	const char *w[CTL_MAX_WORDS];
	assert_int_equal(ctl_parse_request("", 0, w), -EINVAL);               /* empty */
	assert_int_equal(ctl_parse_request("status", 6, w), -EINVAL);         /* no final NUL */
	assert_int_equal(ctl_parse_request("\0", 1, w), -EINVAL);             /* empty word */
	assert_int_equal(ctl_parse_request("a\0\0", 3, w), -EINVAL);
	assert_int_equal(ctl_parse_request("st atus\0", 8, w), -EINVAL);      /* space */
	assert_int_equal(ctl_parse_request("st\natus\0", 8, w), -EINVAL);     /* control byte */
	assert_int_equal(ctl_parse_request("st\xc3\xa9\0", 5, w), -EINVAL);   /* not ASCII */
	char many[64];
	size_t n = 0;
	for (int i = 0; i < CTL_MAX_WORDS + 1; i++) {
		many[n++] = 'a';
		many[n++] = 0;
	}
	assert_int_equal(ctl_parse_request(many, n, w), -EINVAL);
	assert_int_equal(ctl_parse_request(many, n - 2, w), CTL_MAX_WORDS);
	static char big[CTL_MAX_REQUEST + 2];
	memset(big, 'a', sizeof big);
	big[sizeof big - 1] = 0;
	assert_int_equal(ctl_parse_request(big, sizeof big, w), -EINVAL);
}

static void test_find(void **state)
{
	(void)state;
	char err[256];
	const char *status[] = { "status" }, *json[] = { "status", "--json" }, *kick0[] = { "kick" },
		   *kick1[] = { "kick", "ABC" }, *bogus[] = { "bogus" }, *reload2[] = { "reload", "x" };
	const struct ctl_command *c = ctl_find(status, 1, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->id, CTL_STATUS);
	assert_non_null(ctl_find(json, 2, err, sizeof err));
	assert_null(ctl_find(kick0, 1, err, sizeof err));
	assert_string_equal(err, "usage: kick SESSION");
	c = ctl_find(kick1, 2, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->id, CTL_KICK);
	assert_null(ctl_find(bogus, 1, err, sizeof err));
	assert_non_null(strstr(err, "unknown command 'bogus'"));
	assert_null(ctl_find(reload2, 2, err, sizeof err));
	assert_string_equal(err, "usage: reload");
}

static void test_table_and_help(void **state)
{
	(void)state;
	char help[4096];
	assert_true(ctl_format_help(help, sizeof help) > 0);
	for (int i = 0; i < CTL_CMD_MAX; i++) {
		assert_int_equal(ctl_commands[i].id, i);   /* the master indexes handlers by id */
		assert_non_null(strstr(help, ctl_commands[i].name));
		assert_non_null(strstr(help, ctl_commands[i].help));
	}
	char small[16];
	assert_int_equal(ctl_format_help(small, sizeof small), -ENOSPC);
}

static void test_strbuf(void **state)
{
	(void)state;
	struct strbuf sb = { 0 };
	assert_string_equal(strbuf_str(&sb), "");
	strbuf_printf(&sb, "%d-%s", 42, "x");
	strbuf_json_str(&sb, "a\"b\\c\nd\x01");
	assert_string_equal(strbuf_str(&sb), "42-x\"a\\\"b\\\\c\\u000ad\\u0001\"");
	char big[1000];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	strbuf_printf(&sb, "%s", big);   /* longer than the small stack buffer */
	assert_int_equal(sb.len, strlen(strbuf_str(&sb)));
	assert_int_equal(sb.len, 4 + 22 + 999);
	assert_false(sb.failed);
	strbuf_free(&sb);
	assert_null(sb.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_words),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_table_and_help),
		cmocka_unit_test(test_strbuf),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
