/* test_sdp.c — the DESCRIBE answer's SDP (proto/sdp.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/sdp.h"

static const char *const two[] = {
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n",
	"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\n",
};

static void test_on_demand(void **state)
{
	char buf[1024];
	struct sdp_session s = { .origin_ip = "10.1.2.3", .session_id = 77, .name = "a.mp4",
				 .tool = "rtspd x", .duration = 10.0 };
	int n = sdp_build(buf, sizeof buf, &s, two, 2);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_true(!strncmp(buf, "v=0\r\no=- 77 1 IN IP4 10.1.2.3\r\ns=a.mp4\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n", 64));
	assert_non_null(strstr(buf, "a=control:*\r\n"));
	assert_non_null(strstr(buf, "a=range:npt=0-10.000\r\n"));
	/* each track's section, then its control */
	const char *v = strstr(buf, "m=video");
	const char *a = strstr(buf, "m=audio");
	assert_non_null(v);
	assert_non_null(a);
	assert_true(v < a);
	assert_non_null(strstr(buf, "packetization-mode=1\r\na=control:trackID=0\r\nm=audio"));
	assert_true(strstr(buf, "a=control:trackID=1\r\n") > a);
	/* session-level lines come before the first m= */
	assert_true(strstr(buf, "a=control:*") < v);
}

static void test_live_and_ipv6(void **state)
{
	char buf[1024];
	struct sdp_session s = { .origin_ip = "::1", .ipv6 = true, .live = true };
	assert_true(sdp_build(buf, sizeof buf, &s, two, 1) > 0);
	assert_non_null(strstr(buf, "o=- 0 1 IN IP6 ::1\r\n"));
	assert_non_null(strstr(buf, "c=IN IP6 ::\r\n"));
	assert_non_null(strstr(buf, "a=range:npt=now-\r\n"));
	assert_non_null(strstr(buf, "s=rtspd\r\n"));
	assert_null(strstr(buf, "m=audio"));
	s.live = false;
	assert_true(sdp_build(buf, sizeof buf, &s, two, 0) > 0);
	assert_non_null(strstr(buf, "a=range:npt=0-\r\n"));
}

static void test_srtp(void **state)
{
	char buf[1024];
	const char *const crypto[] = { "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY0", NULL };
	struct sdp_session s = { .origin_ip = "1.2.3.4", .crypto = crypto };
	assert_true(sdp_build(buf, sizeof buf, &s, two, 2) > 0);
	/* the keyed track is RTP/SAVP with its key before its control ... */
	assert_non_null(strstr(buf, "m=video 0 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"));
	assert_non_null(strstr(buf, "packetization-mode=1\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY0\r\n"
				    "a=control:trackID=0\r\n"));
	/* ... the other stays as it was */
	assert_non_null(strstr(buf, "m=audio 0 RTP/AVP 97\r\n"));
	assert_null(strstr(strstr(buf, "m=audio"), "a=crypto"));
}

static void test_too_small(void **state)
{
	char buf[64];
	struct sdp_session s = { .origin_ip = "1.2.3.4" };
	assert_int_equal(sdp_build(buf, sizeof buf, &s, two, 2), -ENOSPC);
	assert_int_equal(buf[0], 0);
	assert_int_equal(sdp_build(buf, 0, &s, two, 2), -ENOSPC);
}

static void test_multicast(void **state)
{
	char buf[1024];
	struct sdp_session s = { .origin_ip = "10.1.2.3", .live = true, .mcast_group = "232.0.1.7",
				 .mcast_ttl = 16, .mcast_port = 26056 };
	int n = sdp_build(buf, sizeof buf, &s, two, 2);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "\r\nc=IN IP4 232.0.1.7/16\r\n"));
	assert_null(strstr(buf, "0.0.0.0"));
	/* track i on port + 2i, the rest of the section untouched */
	assert_non_null(strstr(buf, "\r\nm=video 26056 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"));
	assert_non_null(strstr(buf, "\r\nm=audio 26058 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\n"
				    "a=control:trackID=1\r\n"));
	/* a section that is not an m= line cannot carry the port */
	static const char *const bad[] = { "a=foo\r\n" };
	assert_int_equal(sdp_build(buf, sizeof buf, &s, bad, 1), -EINVAL);
	static const char *const short_m[] = { "m=video\r\na=x y z\r\n" };
	assert_int_equal(sdp_build(buf, sizeof buf, &s, short_m, 1), -EINVAL);
	assert_int_equal(buf[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_on_demand),
		cmocka_unit_test(test_live_and_ipv6),
		cmocka_unit_test(test_srtp),
		cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_multicast),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
