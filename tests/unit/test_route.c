/* test_route.c — which stream a URL names (proto/route.c): the key the
 * master routes on and the worker checks against must agree. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/ipc-t.h"
#include "proto/route.h"

static int route(const char *uri, bool default_live, struct route *r)
{
	struct rtsp_url u;
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	return route_from_url(&u, default_live, r);
}

static void test_test_pattern(void **state)
{
	struct route r;
	assert_int_equal(route("rtsp://h:8554/test", false, &r), 0);
	assert_int_equal(r.kind, SOURCE_TEST);
	assert_true(r.live);
	assert_string_equal(r.key, "test");
	/* a track URL of it names the same stream */
	assert_int_equal(route("rtsp://h:8554/test/trackID=1", false, &r), 0);
	assert_string_equal(r.key, "test");
}

static void test_files(void **state)
{
	struct route r;
	assert_int_equal(route("rtsp://h/sub/a.mp4", false, &r), 0);
	assert_int_equal(r.kind, SOURCE_FILE);
	assert_false(r.live);
	assert_string_equal(r.path, "sub/a.mp4");
	assert_string_equal(r.key, "sub/a.mp4");
	assert_int_equal(route("rtsp://h/sub/a.mp4?mode=live", false, &r), 0);
	assert_true(r.live);
	assert_string_equal(r.key, "sub/a.mp4?mode=live");
	/* ffmpeg's track URL built from a Content-Base with a query */
	assert_int_equal(route("rtsp://h/sub/a.mp4?mode=live/trackID=0", false, &r), 0);
	assert_string_equal(r.key, "sub/a.mp4?mode=live");
	/* the config's default, and asking the other way */
	assert_int_equal(route("rtsp://h/a.mp4", true, &r), 0);
	assert_string_equal(r.key, "a.mp4?mode=live");
	assert_int_equal(route("rtsp://h/a.mp4?mode=ondemand", true, &r), 0);
	assert_string_equal(r.key, "a.mp4");
	/* other parameters do not make another stream */
	assert_int_equal(route("rtsp://h/a.mp4?foo=1", false, &r), 0);
	assert_string_equal(r.key, "a.mp4");
	/* percent-decoded */
	assert_int_equal(route("rtsp://h/my%20file.mp4", false, &r), 0);
	assert_string_equal(r.path, "my file.mp4");
}

static void test_no_stream(void **state)
{
	struct route r;
	assert_int_equal(route("rtsp://h:554/", false, &r), -ENOENT);
	assert_int_equal(route("*", false, &r), -ENOENT);
	struct rtsp_url u;
	assert_int_equal(rtsp_url_parse("rtsp://h/../etc/passwd", &u), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_test_pattern),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_no_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
