/* test_url.c — unit tests of RTSP URL parsing (proto/url.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/url.h"

static struct rtsp_url u;

static void test_full_url(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://example.com:8554/live/cam1?a=1&b=2", &u), 0);
	assert_string_equal(u.scheme, "rtsp");
	assert_string_equal(u.host, "example.com");
	assert_int_equal(u.port, 8554);
	assert_string_equal(u.path, "live/cam1");
	assert_string_equal(u.query, "a=1&b=2");
	assert_int_equal(u.track, -1);
	assert_false(u.asterisk);

	assert_int_equal(rtsp_url_parse("rtsp://192.168.1.10/sample.mp4", &u), 0);
	assert_string_equal(u.host, "192.168.1.10");
	assert_int_equal(u.port, -1);
	assert_string_equal(u.path, "sample.mp4");
	assert_string_equal(u.query, "");

	assert_int_equal(rtsp_url_parse("RTSPS://Cam.Example:322/x", &u), 0);
	assert_string_equal(u.scheme, "rtsps");
	assert_string_equal(u.host, "Cam.Example");
	assert_int_equal(u.port, 322);

	assert_int_equal(rtsp_url_parse("rtsph://h/x#frag", &u), 0);
	assert_string_equal(u.scheme, "rtsph");
	assert_string_equal(u.path, "x");

	assert_int_equal(rtsp_url_parse("rtsp://h:/x", &u), 0);   /* empty port = default */
	assert_int_equal(u.port, -1);
	assert_int_equal(rtsp_url_parse("rtsp://h:0/x", &u), 0);
	assert_int_equal(u.port, 0);
	assert_int_equal(rtsp_url_parse("rtsp://h:65535/x", &u), 0);
	assert_int_equal(u.port, 65535);
}

static void test_root_and_slashes(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://h", &u), 0);
	assert_string_equal(u.path, "");
	assert_int_equal(rtsp_url_parse("rtsp://h/", &u), 0);
	assert_string_equal(u.path, "");
	assert_int_equal(rtsp_url_parse("rtsp://h?x=1", &u), 0);
	assert_string_equal(u.path, "");
	assert_string_equal(u.query, "x=1");
	assert_int_equal(rtsp_url_parse("rtsp://h//a///b.mp4//", &u), 0);
	assert_string_equal(u.path, "a/b.mp4");
	/* Content-Base form with the trailing '/' */
	assert_int_equal(rtsp_url_parse("rtsp://h/live/cam1/", &u), 0);
	assert_string_equal(u.path, "live/cam1");
}

static void test_userinfo(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://admin:secret@cam.local:554/Streaming/Channels/101", &u), 0);
	assert_string_equal(u.host, "cam.local");
	assert_int_equal(u.port, 554);
	assert_string_equal(u.path, "Streaming/Channels/101");
	/* A raw '@' in the password: the host follows the last '@'. */
	assert_int_equal(rtsp_url_parse("rtsp://user:p@ss@host/x", &u), 0);
	assert_string_equal(u.host, "host");
	assert_int_equal(rtsp_url_parse("rtsp://user:p%40ss@host/x", &u), 0);
	assert_string_equal(u.host, "host");
	assert_int_equal(rtsp_url_parse("rtsp://user@/x", &u), -EINVAL);
}

static void test_ipv6(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://[::1]:8554/x", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 8554);
	assert_string_equal(u.path, "x");
	assert_int_equal(rtsp_url_parse("rtsp://[2001:db8::42]/live", &u), 0);
	assert_string_equal(u.host, "2001:db8::42");
	assert_int_equal(u.port, -1);
	assert_int_equal(rtsp_url_parse("rtsp://u:p@[fe80::1%25eth0]:554/x", &u), 0);
	assert_string_equal(u.host, "fe80::1%25eth0");
	assert_int_equal(rtsp_url_parse("rtsp://[::1/x", &u), -EINVAL);
	assert_int_equal(rtsp_url_parse("rtsp://[::1]x/y", &u), -EINVAL);
	assert_int_equal(rtsp_url_parse("rtsp://[]/y", &u), -EINVAL);
	assert_int_equal(rtsp_url_parse("rtsp://::1/x", &u), -EINVAL);   /* needs brackets */
}

static void test_abs_path_and_asterisk(void **state)
{
	assert_int_equal(rtsp_url_parse("/live/cam1?mode=live", &u), 0);
	assert_string_equal(u.scheme, "");
	assert_string_equal(u.host, "");
	assert_int_equal(u.port, -1);
	assert_string_equal(u.path, "live/cam1");
	assert_string_equal(u.query, "mode=live");
	assert_int_equal(rtsp_url_parse("/", &u), 0);
	assert_string_equal(u.path, "");

	assert_int_equal(rtsp_url_parse("*", &u), 0);
	assert_true(u.asterisk);
	assert_string_equal(u.path, "");
	assert_int_equal(u.track, -1);
	assert_int_equal(rtsp_url_parse("/*", &u), 0);
	assert_false(u.asterisk);
	assert_string_equal(u.path, "*");
}

static void test_track_suffix(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://h/a/b.mp4/trackID=1", &u), 0);
	assert_string_equal(u.path, "a/b.mp4");
	assert_int_equal(u.track, 1);
	assert_int_equal(rtsp_url_parse("rtsp://h/a/b.mp4/trackid=12/", &u), 0);
	assert_string_equal(u.path, "a/b.mp4");
	assert_int_equal(u.track, 12);
	assert_int_equal(rtsp_url_parse("rtsp://h/cam/TRACK=2", &u), 0);
	assert_int_equal(u.track, 2);
	assert_int_equal(rtsp_url_parse("rtsp://h/cam/streamid=3", &u), 0);
	assert_string_equal(u.path, "cam");
	assert_int_equal(u.track, 3);
	assert_int_equal(rtsp_url_parse("rtsp://h/trackID=0", &u), 0);
	assert_string_equal(u.path, "");
	assert_int_equal(u.track, 0);

	/* Not track suffixes: they stay in the path. */
	assert_int_equal(rtsp_url_parse("rtsp://h/a/trackID=x", &u), 0);
	assert_string_equal(u.path, "a/trackID=x");
	assert_int_equal(u.track, -1);
	assert_int_equal(rtsp_url_parse("rtsp://h/a/trackID=", &u), 0);
	assert_string_equal(u.path, "a/trackID=");
	assert_int_equal(rtsp_url_parse("rtsp://h/a/trackID=1234567890", &u), 0);
	assert_int_equal(u.track, -1);
	assert_int_equal(rtsp_url_parse("rtsp://h/a/mytrackID=1", &u), 0);
	assert_int_equal(u.track, -1);
	assert_int_equal(rtsp_url_parse("rtsp://h/trackID=1/a", &u), 0);
	assert_string_equal(u.path, "trackID=1/a");
	assert_int_equal(u.track, -1);
}

static void test_query_track_suffix(void **state)
{
	/* Clients append the control to Content-Base, query and all. */
	assert_int_equal(rtsp_url_parse("rtsp://h/sample.mp4?mode=live/trackID=0", &u), 0);
	assert_string_equal(u.path, "sample.mp4");
	assert_string_equal(u.query, "mode=live");
	assert_int_equal(u.track, 0);

	assert_int_equal(rtsp_url_parse("rtsp://h/sample.mp4?mode=live/", &u), 0);
	assert_string_equal(u.query, "mode=live");
	assert_int_equal(u.track, -1);

	assert_int_equal(rtsp_url_parse("rtsp://h/s.mp4?mode=live//trackID=7/", &u), 0);
	assert_string_equal(u.query, "mode=live");
	assert_int_equal(u.track, 7);

	assert_int_equal(rtsp_url_parse("rtsp://h/s.mp4/?a=1&b=2/streamid=1", &u), 0);
	assert_string_equal(u.path, "s.mp4");
	assert_string_equal(u.query, "a=1&b=2");
	assert_int_equal(u.track, 1);

	/* A query parameter of that name is not a suffix. */
	assert_int_equal(rtsp_url_parse("rtsp://h/s.mp4?trackID=1", &u), 0);
	assert_string_equal(u.query, "trackID=1");
	assert_int_equal(u.track, -1);

	/* The query's suffix came last, so it wins over one in the path. */
	assert_int_equal(rtsp_url_parse("rtsp://h/s/trackID=1?x=1/trackID=2", &u), 0);
	assert_int_equal(u.track, 2);
	assert_string_equal(u.path, "s/trackID=1");
	assert_int_equal(rtsp_url_parse("rtsp://h/s/trackID=1?x=1", &u), 0);
	assert_int_equal(u.track, 1);
	assert_string_equal(u.path, "s");
	assert_string_equal(u.query, "x=1");
}

static void test_percent_decoding(void **state)
{
	assert_int_equal(rtsp_url_parse("rtsp://h/my%20movie.mp4", &u), 0);
	assert_string_equal(u.path, "my movie.mp4");
	assert_int_equal(rtsp_url_parse("/%41%62c/%e2%82%ac.mp4", &u), 0);
	assert_string_equal(u.path, "Abc/\xe2\x82\xac.mp4");
	/* An encoded '/' splits like a raw one, and never yields an absolute path. */
	assert_int_equal(rtsp_url_parse("/%2Fetc%2Fpasswd", &u), 0);
	assert_string_equal(u.path, "etc/passwd");
	/* The query stays raw. */
	assert_int_equal(rtsp_url_parse("/x?name=a%20b", &u), 0);
	assert_string_equal(u.query, "name=a%20b");
	/* Dots that are not whole segments are ordinary names. */
	assert_int_equal(rtsp_url_parse("/a/...b/..c/c../.hidden", &u), 0);
	assert_string_equal(u.path, "a/...b/..c/c../.hidden");
}

static void test_traversal_and_bad_bytes(void **state)
{
	static const char *const bad[] = {
		"/../etc/passwd",
		"rtsp://h/../etc/passwd",
		"rtsp://h/a/../../b",
		"rtsp://h/a/..",
		"rtsp://h/%2e%2e/x",
		"rtsp://h/%2E%2E%2Fetc",
		"rtsp://h/..%2f..%2fetc%2fpasswd",
		"rtsp://h/a/%2e/b",
		"rtsp://h/a/./b",
		"/.",
		"/a/.%2E/b",
		"/a\\b",
		"/a%5cb",
		"/a%5C..%5Cb",
		"/a%00b",
		"/a%0d%0aX-Injected: 1",
		"/a%7f",
		"/a%zz",
		"/a%2",
		"/a%",
		"/a b",
		"/a\tb",
		"/x?a\x01",
		"/x?a b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = rtsp_url_parse(bad[i], &u);
		if (r != -EINVAL)
			fail_msg("\"%s\": got %d", bad[i], r);
	}
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "rtsp", "rtsp:", "rtsp:/h/x", "rtsp//h/x", "1rtsp://h/x", "://h/x", "live/cam1",
		"rtsp:///x", "rtsp://h:99999/x", "rtsp://h:-1/x", "rtsp://h:abc/x", "rtsp://h:123456/x",
		"rtsp://h:1:2/x", "rtsp://ho st/x", "rtsp://h\"/x", "rtsp://h<x>/x",
		"averyveryverylongscheme://h/x", "**",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = rtsp_url_parse(bad[i], &u);
		if (r != -EINVAL)
			fail_msg("\"%s\": got %d", bad[i], r);
	}
	assert_int_equal(rtsp_url_parse(NULL, &u), -EINVAL);
	assert_int_equal(rtsp_url_parse("/x", NULL), -EINVAL);
}

static void test_length_limits(void **state)
{
	static char uri[4096];
	char *p = uri + sprintf(uri, "rtsp://");
	memset(p, 'h', 255);
	strcpy(p + 255, "/x");
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	assert_int_equal(strlen(u.host), 255);
	memset(p, 'h', 256);
	strcpy(p + 256, "/x");
	assert_int_equal(rtsp_url_parse(uri, &u), -EINVAL);

	p = uri + sprintf(uri, "/");
	memset(p, 'a', 1023);
	p[1023] = '\0';
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	assert_int_equal(strlen(u.path), 1023);
	p[1023] = 'a';
	p[1024] = '\0';
	assert_int_equal(rtsp_url_parse(uri, &u), -EINVAL);
	/* Encoded bytes count once decoded. */
	p = uri + sprintf(uri, "/");
	for (int i = 0; i < 1023; i++)
		p += sprintf(p, "%%61");
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	assert_int_equal(strlen(u.path), 1023);

	/* Slashes that are dropped do not count either. */
	memset(uri, '/', 3000);
	strcpy(uri + 3000, "a//b///");
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	assert_string_equal(u.path, "a/b");

	p = uri + sprintf(uri, "/x?");
	memset(p, 'q', 1024);
	p[1024] = '\0';
	assert_int_equal(rtsp_url_parse(uri, &u), -EINVAL);
	strcpy(p + 1023, "/trackID=1");   /* the suffix does not count */
	assert_int_equal(rtsp_url_parse(uri, &u), 0);
	assert_int_equal(strlen(u.query), 1023);
	assert_int_equal(u.track, 1);
}

static void test_query_get(void **state)
{
	char val[16];
	assert_int_equal(url_query_get("a=1&mode=live", "mode", val, sizeof val), 0);
	assert_string_equal(val, "live");
	assert_int_equal(url_query_get("a=1&mode=live", "MODE", val, sizeof val), 0);
	assert_string_equal(val, "live");
	assert_int_equal(url_query_get("a=1&Mode=x&mode=y", "mode", val, sizeof val), 0);
	assert_string_equal(val, "x");
	assert_int_equal(url_query_get("a=1&mode=live", "b", val, sizeof val), -ENOENT);
	assert_int_equal(url_query_get("a=1&mode=live", "mod", val, sizeof val), -ENOENT);
	assert_int_equal(url_query_get("", "a", val, sizeof val), -ENOENT);
	assert_int_equal(url_query_get("&&", "", val, sizeof val), -ENOENT);
	assert_int_equal(url_query_get("name=a%20b+c", "name", val, sizeof val), 0);
	assert_string_equal(val, "a b+c");
	assert_int_equal(url_query_get("flag&x=2", "flag", val, sizeof val), 0);
	assert_string_equal(val, "");
	assert_int_equal(url_query_get("e=", "e", val, sizeof val), 0);
	assert_string_equal(val, "");
	assert_int_equal(url_query_get("k=a=b", "k", val, sizeof val), 0);
	assert_string_equal(val, "a=b");

	assert_int_equal(url_query_get("k=0123456789abcdef", "k", val, sizeof val), -ENOSPC);
	assert_int_equal(url_query_get("k=0123456789abcde", "k", val, sizeof val), 0);
	assert_int_equal(url_query_get("k=1", "k", val, 0), -ENOSPC);
	assert_int_equal(url_query_get("k=%g1", "k", val, sizeof val), -EINVAL);
	assert_int_equal(url_query_get("k=%0", "k", val, sizeof val), -EINVAL);
	assert_int_equal(url_query_get("k=a%00b", "k", val, sizeof val), -EINVAL);
	assert_int_equal(url_query_get(NULL, "k", val, sizeof val), -EINVAL);

	/* Together with the parser, on a track URL. */
	assert_int_equal(rtsp_url_parse("rtsp://h/sample.mp4?mode=live&loop=1/trackID=0", &u), 0);
	assert_int_equal(url_query_get(u.query, "loop", val, sizeof val), 0);
	assert_string_equal(val, "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_url),
		cmocka_unit_test(test_root_and_slashes),
		cmocka_unit_test(test_userinfo),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_abs_path_and_asterisk),
		cmocka_unit_test(test_track_suffix),
		cmocka_unit_test(test_query_track_suffix),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_traversal_and_bad_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_query_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
