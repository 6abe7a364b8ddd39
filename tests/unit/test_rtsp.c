/* test_rtsp.c — unit tests of the RTSP text-protocol parsers (proto/rtsp.c). */
#include <errno.h>
#include <math.h>   /* NAN */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/rtsp.h"

/* The structs are large (a private 8 KiB copy each): keep one of each here
 * rather than on every test's stack. */
static struct rtsp_request req;
static struct rtsp_response resp;

static int parse_str(const char *s)
{
	return rtsp_parse_request(s, strlen(s), &req);
}

static int parse_resp_str(const char *s)
{
	return rtsp_parse_response(s, strlen(s), &resp);
}

/* ---------------------------------------------------------------- requests */

static void test_request_simple(void **state)
{
	const char *msg = "OPTIONS rtsp://example.com/media.mp4 RTSP/1.0\r\n"
			  "CSeq: 1\r\n"
			  "User-Agent:   VLC media player  \r\n"
			  "\r\n";
	assert_int_equal(parse_str(msg), (int)strlen(msg));
	assert_string_equal(req.method, "OPTIONS");
	assert_string_equal(req.uri, "rtsp://example.com/media.mp4");
	assert_string_equal(req.version, "RTSP/1.0");
	assert_int_equal(req.version_major, 1);
	assert_int_equal(req.version_minor, 0);
	assert_int_equal(req.cseq, 1);
	assert_int_equal(req.nheaders, 2);
	assert_string_equal(req.headers[1].name, "User-Agent");
	assert_string_equal(req.headers[1].value, "VLC media player");
	assert_string_equal(rtsp_header(&req, "user-agent"), "VLC media player");
	assert_string_equal(rtsp_header(&req, "CSEQ"), "1");
	assert_null(rtsp_header(&req, "Session"));
	assert_null(req.body);
	assert_int_equal(req.body_len, 0);
	assert_int_equal(req.content_length, 0);
	assert_int_equal(req.total_len, strlen(msg));
}

static void test_request_no_headers_and_asterisk(void **state)
{
	assert_int_equal(parse_str("OPTIONS * RTSP/1.0\r\n\r\n"), 22);
	assert_string_equal(req.uri, "*");
	assert_int_equal(req.nheaders, 0);
	assert_int_equal(req.cseq, -1);
}

static void test_request_incomplete_prefixes(void **state)
{
	const char *msg = "DESCRIBE rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n";
	size_t n = strlen(msg);
	/* Every prefix short of the final CR LF is incomplete. */
	for (size_t k = 0; k + 1 < n; k++)
		assert_int_equal(rtsp_parse_request(msg, k, &req), 0);
	/* Ending in the CR of the blank line: taken as complete, so that clients
	 * ending lines with bare CRs are answered; the LF that follows is then an
	 * empty line before the next message. */
	assert_int_equal(rtsp_parse_request(msg, n - 1, &req), (int)(n - 1));
	assert_int_equal(req.cseq, 2);
	assert_int_equal(rtsp_skip_blank_lines(msg + n - 1, 1), 1);
	assert_int_equal(rtsp_parse_request(msg, n, &req), (int)n);
}

static void test_request_pipelined(void **state)
{
	const char *buf = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"
			  "\r\n"   /* a stray CRLF between messages */
			  "SET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nab\r\n"
			  "GET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\n\r\n";
	size_t len = strlen(buf), off = 0;
	int r = rtsp_parse_request(buf, len, &req);
	assert_true(r > 0);
	assert_int_equal(req.cseq, 1);
	assert_int_equal((size_t)r, req.total_len);
	off += (size_t)r;

	r = rtsp_parse_request(buf + off, len - off, &req);
	assert_true(r > 0);
	assert_string_equal(req.method, "SET_PARAMETER");
	assert_int_equal(req.cseq, 2);
	assert_int_equal(req.body_len, 4);
	assert_memory_equal(req.body, "ab\r\n", 4);
	assert_ptr_equal(req.body, buf + off + (size_t)r - 4);
	off += (size_t)r;

	r = rtsp_parse_request(buf + off, len - off, &req);
	assert_int_equal(r, (int)(len - off));
	assert_string_equal(req.method, "GET_PARAMETER");
	assert_int_equal(req.cseq, 3);
}

static void check_line_end_variant(const char *msg)
{
	assert_int_equal(parse_str(msg), (int)strlen(msg));
	assert_string_equal(req.method, "PLAY");
	assert_string_equal(req.uri, "rtsp://h/a");
	assert_int_equal(req.cseq, 5);
	assert_int_equal(req.nheaders, 2);
	assert_string_equal(rtsp_header(&req, "Session"), "12345678");
}

static void test_request_line_ends(void **state)
{
	check_line_end_variant("PLAY rtsp://h/a RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n");
	check_line_end_variant("PLAY rtsp://h/a RTSP/1.0\nCSeq: 5\nSession: 12345678\n\n");
	check_line_end_variant("PLAY rtsp://h/a RTSP/1.0\rCSeq: 5\rSession: 12345678\r\r");
	check_line_end_variant("PLAY rtsp://h/a RTSP/1.0\r\nCSeq: 5\nSession: 12345678\r\r\n");
	check_line_end_variant("PLAY rtsp://h/a RTSP/1.0\nCSeq: 5\r\nSession: 12345678\n\r\n");
}

static void test_request_bare_cr_then_body(void **state)
{
	/* A bare CR ends the blank line; the body starts right after it. */
	const char *msg = "ANNOUNCE rtsp://h/a RTSP/1.0\rCSeq: 1\rContent-Length: 3\r\rv=0";
	assert_int_equal(parse_str(msg), (int)strlen(msg));
	assert_int_equal(req.body_len, 3);
	assert_memory_equal(req.body, "v=0", 3);
	/* With the buffer ending in that CR, the parser waits: a LF may follow. */
	assert_int_equal(rtsp_parse_request(msg, strlen(msg) - 3, &req), 0);
}

static void test_request_leading_blank_lines(void **state)
{
	const char *msg = "\r\n\r\n\nOPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n";
	assert_int_equal(parse_str(msg), (int)strlen(msg));
	assert_int_equal(req.total_len, strlen(msg));
	assert_int_equal(req.cseq, 9);
	assert_int_equal(parse_str("\r\n\r\n"), 0);
	assert_int_equal(rtsp_skip_blank_lines("\r\n\n$\x01", 5), 3);
	assert_int_equal(rtsp_skip_blank_lines("", 0), 0);
}

static void test_request_body_split(void **state)
{
	const char head[] = "SET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 7\r\n"
			    "Content-Type: text/parameters\r\nContent-Length: 20\r\n\r\n";
	const char body[] = "barparam: barstuff\r\n";
	char buf[sizeof head + sizeof body];
	size_t hl = strlen(head), bl = strlen(body);
	memcpy(buf, head, hl);
	memcpy(buf + hl, body, bl);
	assert_int_equal(bl, 20);
	for (size_t k = 0; k < hl + bl; k++)
		assert_int_equal(rtsp_parse_request(buf, k, &req), 0);
	assert_int_equal(rtsp_parse_request(buf, hl + bl, &req), (int)(hl + bl));
	assert_int_equal(req.content_length, 20);
	assert_int_equal(req.body_len, 20);
	assert_ptr_equal(req.body, buf + hl);
	assert_int_equal(req.cseq, 7);

	/* The head-only parser answers as soon as the headers are in. */
	assert_int_equal(rtsp_parse_request_head(buf, hl + 3, &req), (int)hl);
	assert_int_equal(req.content_length, 20);
	assert_null(req.body);
	assert_int_equal(req.body_len, 0);
}

static void test_request_cseq_forms(void **state)
{
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nUser-Agent: x\r\n\r\n") > 0);
	assert_int_equal(req.cseq, -1);
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n") > 0);
	assert_int_equal(req.cseq, -1);
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nCSeq: -3\r\n\r\n") > 0);
	assert_int_equal(req.cseq, -1);
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nCSeq: 99999999999\r\n\r\n") > 0);
	assert_int_equal(req.cseq, -1);
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\ncseq:   42  \r\n\r\n") > 0);
	assert_int_equal(req.cseq, 42);
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nCSeq: 0\r\n\r\n") > 0);
	assert_int_equal(req.cseq, 0);
}

/* Builds "OPTIONS * RTSP/1.0\r\n" + a header whose line pads the section to
 * exactly `section` bytes (blank line included) + "\r\n". */
static size_t build_sized_request(char *buf, size_t section)
{
	const char *start = "OPTIONS * RTSP/1.0\r\nX-Pad: ";
	size_t n = strlen(start);
	memcpy(buf, start, n);
	size_t pad = section - n - 4;   /* "\r\n\r\n" */
	memset(buf + n, 'a', pad);
	memcpy(buf + n + pad, "\r\n\r\n", 4);
	return section;
}

static void test_request_oversize(void **state)
{
	static char buf[RTSP_MAX_HEADER_BYTES * 2];
	size_t n = build_sized_request(buf, RTSP_MAX_HEADER_BYTES);
	assert_int_equal(rtsp_parse_request(buf, n, &req), (int)n);
	assert_int_equal(strlen(rtsp_header(&req, "X-Pad")), RTSP_MAX_HEADER_BYTES - strlen("OPTIONS * RTSP/1.0\r\nX-Pad: \r\n\r\n"));

	n = build_sized_request(buf, RTSP_MAX_HEADER_BYTES + 1);
	assert_int_equal(rtsp_parse_request(buf, n, &req), -EMSGSIZE);

	/* No blank line in sight after the limit: rejected without waiting. */
	memset(buf, 'a', sizeof buf);
	memcpy(buf, "OPTIONS * RTSP/1.0\r\nX: ", 23);
	assert_int_equal(rtsp_parse_request(buf, RTSP_MAX_HEADER_BYTES, &req), 0);
	assert_int_equal(rtsp_parse_request(buf, RTSP_MAX_HEADER_BYTES + 1, &req), -EMSGSIZE);
	assert_int_equal(rtsp_parse_request(buf, sizeof buf, &req), -EMSGSIZE);

	/* Endless blank lines are not buffered forever either. */
	memset(buf, '\n', sizeof buf);
	assert_int_equal(rtsp_parse_request(buf, sizeof buf, &req), -EMSGSIZE);
}

static void test_request_too_many_headers(void **state)
{
	char buf[4096];
	for (int count = RTSP_MAX_HEADERS; count <= RTSP_MAX_HEADERS + 1; count++) {
		size_t n = (size_t)snprintf(buf, sizeof buf, "OPTIONS * RTSP/1.0\r\n");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: %d\r\n", i, i);
		n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
		int r = rtsp_parse_request(buf, n, &req);
		if (count == RTSP_MAX_HEADERS) {
			assert_int_equal(r, (int)n);
			assert_int_equal(req.nheaders, RTSP_MAX_HEADERS);
			assert_string_equal(rtsp_header(&req, "x-63"), "63");
		} else {
			assert_int_equal(r, -EMSGSIZE);
		}
	}
}

static void test_request_content_length(void **state)
{
	char buf[256];
	snprintf(buf, sizeof buf, "ANNOUNCE rtsp://h/a RTSP/1.0\r\nContent-Length: %d\r\n\r\n", RTSP_MAX_BODY + 1);
	assert_int_equal(parse_str(buf), -EMSGSIZE);
	snprintf(buf, sizeof buf, "ANNOUNCE rtsp://h/a RTSP/1.0\r\nContent-Length: %d\r\n\r\n", RTSP_MAX_BODY);
	assert_int_equal(parse_str(buf), 0);   /* legal; waiting for the body */
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: 99999999999999999999999\r\n\r\n"), -EMSGSIZE);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: abc\r\n\r\n"), -EBADMSG);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: -1\r\n\r\n"), -EBADMSG);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: +1\r\n\r\n"), -EBADMSG);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length:\r\n\r\n"), -EBADMSG);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: 1 2\r\n\r\n"), -EBADMSG);
	assert_int_equal(parse_str("ANNOUNCE * RTSP/1.0\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\nab"), -EBADMSG);
	const char *twice = "ANNOUNCE * RTSP/1.0\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab";
	assert_int_equal(parse_str(twice), (int)strlen(twice));
	const char *zero = "ANNOUNCE * RTSP/1.0\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(parse_str(zero), (int)strlen(zero));
	assert_null(req.body);
}

static void test_request_malformed(void **state)
{
	static const char *const bad[] = {
		"OPTIONS\r\n\r\n",
		"OPTIONS *\r\n\r\n",
		"OPTIONS * RTSP/1.0 extra\r\n\r\n",
		"OPTIONS * FOO/1.0\r\n\r\n",
		"OPTIONS * rtsp/1.0\r\n\r\n",
		"OPTIONS * RTSP/1\r\n\r\n",
		"OPTIONS * RTSP/1.0x\r\n\r\n",
		"OPTIONS * RTSP/.0\r\n\r\n",
		"OPTIONS * RTSP/1234.0\r\n\r\n",
		" OPTIONS * RTSP/1.0\r\n\r\n",
		"OPT:IONS * RTSP/1.0\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nNo colon here\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\n: empty name\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nBad Name: x\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\n continuation first\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nX: a\001b\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nX: a\x7f\r\n\r\n",
		"RTSP/1.0 200 OK\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = parse_str(bad[i]);
		if (r != -EBADMSG)
			fail_msg("case %zu: got %d", i, r);
	}
}

static void test_request_garbage_rejected_early(void **state)
{
	/* The request line is complete and wrong: no need to wait for the rest. */
	assert_int_equal(parse_str("HELLO THERE\r\nX: y\r\n"), -EBADMSG);
	assert_int_equal(parse_str("GET / HTTP/9\r"), -EBADMSG);
	/* '$' interleaved data handed to the text parser by mistake */
	const char frame[] = "$\x00\x00\x04\x80\x60\x00\x01";
	assert_int_equal(rtsp_parse_request(frame, sizeof frame - 1, &req), -EBADMSG);
	/* A plausible prefix waits. */
	assert_int_equal(parse_str("OPTIONS * RTS"), 0);
}

static void test_request_nul_bytes(void **state)
{
	const char a[] = "OPTIONS * RTSP/1.0\r\nCSeq: 1\0\r\n\r\n";
	assert_int_equal(rtsp_parse_request(a, sizeof a - 1, &req), -EBADMSG);
	const char b[] = "OPTI\0NS * RTSP/1.0\r\n\r\n";
	assert_int_equal(rtsp_parse_request(b, sizeof b - 1, &req), -EBADMSG);
	/* Rejected even before the message is complete. */
	const char c[] = "OPTIONS * RTSP/1.0\r\nX: \0";
	assert_int_equal(rtsp_parse_request(c, sizeof c - 1, &req), -EBADMSG);
	/* A NUL in a body is just data. */
	const char d[] = "SET_PARAMETER * RTSP/1.0\r\nContent-Length: 3\r\n\r\na\0b";
	assert_int_equal(rtsp_parse_request(d, sizeof d - 1, &req), (int)(sizeof d - 1));
	assert_memory_equal(req.body, "a\0b", 3);
}

static void test_request_http_tunnel(void **state)
{
	const char *get = "GET /live/cam1 HTTP/1.1\r\n"
			  "x-sessioncookie: 9a3d7f3bb8e0c1a2\r\n"
			  "Accept: application/x-rtsp-tunnelled\r\n"
			  "Pragma: no-cache\r\nCache-Control: no-cache\r\n\r\n";
	assert_int_equal(parse_str(get), (int)strlen(get));
	assert_string_equal(req.method, "GET");
	assert_string_equal(req.uri, "/live/cam1");
	assert_string_equal(req.version, "HTTP/1.1");
	assert_int_equal(req.version_major, 1);
	assert_int_equal(req.version_minor, 1);
	assert_string_equal(rtsp_header(&req, "X-SessionCookie"), "9a3d7f3bb8e0c1a2");

	const char *post = "POST /live/cam1 HTTP/1.0\r\n"
			   "x-sessioncookie: 9a3d7f3bb8e0c1a2\r\n"
			   "Content-Type: application/x-rtsp-tunnelled\r\n"
			   "Content-Length: 32767\r\n\r\n"
			   "T1BUSU9OUyAqIFJUU1AvMS4wDQo=";
	size_t head = strlen(post) - 28;
	assert_int_equal(parse_str(post), 0);   /* as a whole message it waits for 32767 bytes */
	assert_int_equal(rtsp_parse_request_head(post, strlen(post), &req), (int)head);
	assert_int_equal(req.content_length, 32767);
	assert_int_equal(req.version_minor, 0);

	/* A placeholder length beyond RTSP_MAX_BODY does not stop the head parser. */
	const char *huge = "POST /x HTTP/1.1\r\nContent-Length: 2147483647\r\n\r\n";
	assert_int_equal(parse_str(huge), -EMSGSIZE);
	assert_int_equal(rtsp_parse_request_head(huge, strlen(huge), &req), (int)strlen(huge));
	assert_int_equal(req.content_length, 2147483647);
}

static void test_request_versions(void **state)
{
	assert_true(parse_str("OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n") > 0);
	assert_string_equal(req.version, "RTSP/2.0");
	assert_int_equal(req.version_major, 2);
	assert_int_equal(req.version_minor, 0);
	assert_true(parse_str("GET / HTTP/1.0\r\n\r\n") > 0);
	assert_int_equal(req.version_minor, 0);
	/* Extra spaces between the parts and at the end are tolerated. */
	assert_true(parse_str("PLAY  rtsp://h/a\tRTSP/1.0  \r\n\r\n") > 0);
	assert_string_equal(req.method, "PLAY");
	assert_string_equal(req.uri, "rtsp://h/a");
	assert_string_equal(req.version, "RTSP/1.0");
}

static void test_request_folded_and_trimmed(void **state)
{
	const char *msg = "SETUP rtsp://h/a/trackID=0 RTSP/1.0\r\n"
			  "Transport: RTP/AVP;unicast;\r\n"
			  " client_port=4588-4589\r\n"
			  "\t;ssrc=01020304\r\n"
			  "Empty:\r\n"
			  "X-Odd :  value with  inner  spaces \t\r\n"
			  "Empty2:   \r\n"
			  "  later\r\n"
			  "\r\n";
	assert_int_equal(parse_str(msg), (int)strlen(msg));
	assert_string_equal(rtsp_header(&req, "transport"),
			    "RTP/AVP;unicast; client_port=4588-4589 ;ssrc=01020304");
	assert_string_equal(rtsp_header(&req, "Empty"), "");
	assert_string_equal(rtsp_header(&req, "X-Odd"), "value with  inner  spaces");
	assert_string_equal(rtsp_header(&req, "Empty2"), "later");
	assert_int_equal(req.nheaders, 4);
}

static void test_request_duplicate_headers(void **state)
{
	assert_true(parse_str("OPTIONS * RTSP/1.0\r\nRequire: a\r\nRequire: b\r\n\r\n") > 0);
	assert_string_equal(rtsp_header(&req, "Require"), "a");
	assert_int_equal(req.nheaders, 2);
	assert_string_equal(req.headers[1].value, "b");
}

static void test_request_bad_arguments(void **state)
{
	assert_int_equal(rtsp_parse_request("x", 1, NULL), -EINVAL);
	assert_int_equal(rtsp_parse_request(NULL, 5, &req), -EINVAL);
	assert_int_equal(rtsp_parse_request(NULL, 0, &req), 0);
	assert_int_equal(rtsp_parse_response(NULL, 3, &resp), -EINVAL);
	assert_null(rtsp_header(NULL, "CSeq"));
	assert_null(rtsp_header_find(NULL, 0, "CSeq"));
}

/* ---------------------------------------------------------------- responses */

static void test_response_basic(void **state)
{
	const char *msg = "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n"
			  "Content-Length: 5\r\n\r\nv=0\r\nRTSP/1.0 200 OK\r\n";
	int r = parse_resp_str(msg);
	assert_int_equal(r, (int)strlen(msg) - 17);
	assert_string_equal(resp.version, "RTSP/1.0");
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.reason, "OK");
	assert_int_equal(resp.cseq, 2);
	assert_int_equal(resp.body_len, 5);
	assert_memory_equal(resp.body, "v=0\r\n", 5);
	assert_string_equal(rtsp_response_header(&resp, "content-type"), "application/sdp");

	assert_true(parse_resp_str("RTSP/1.0 454 Session Not Found\r\nCSeq: 3\r\n\r\n") > 0);
	assert_int_equal(resp.status, 454);
	assert_string_equal(resp.reason, "Session Not Found");

	assert_true(parse_resp_str("RTSP/1.0 200\r\nCSeq: 4\r\n\r\n") > 0);
	assert_string_equal(resp.reason, "");
	assert_int_equal(resp.cseq, 4);

	assert_true(parse_resp_str("HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n") > 0);
	assert_string_equal(resp.version, "HTTP/1.0");
	assert_int_equal(resp.cseq, -1);

	assert_int_equal(parse_resp_str("RTSP/1.0 200 OK\r\nCSeq: 2\r\n"), 0);
	assert_int_equal(rtsp_parse_response_head("RTSP/1.0 200 OK\r\nContent-Length: 9\r\n\r\n", 38, &resp), 38);
	assert_int_equal(resp.content_length, 9);
}

static void test_response_malformed(void **state)
{
	static const char *const bad[] = {
		"RTSP/1.0 20 OK\r\n\r\n",
		"RTSP/1.0 2000 OK\r\n\r\n",
		"RTSP/1.0 099 Low\r\n\r\n",
		"RTSP/1.0 2x0 OK\r\n\r\n",
		"RTSP/1.0\r\n\r\n",
		"RTSP/1.0 \r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\n\r\n",
		"RTSP/1.0 200 OK\r\nbad header\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = parse_resp_str(bad[i]);
		if (r != -EBADMSG)
			fail_msg("case %zu: got %d", i, r);
	}
}

static void test_reason_and_status_line(void **state)
{
	static const int codes[] = {
		100, 200, 201, 250, 300, 301, 302, 303, 304, 305, 400, 401, 402, 403, 404,
		405, 406, 407, 408, 410, 411, 412, 413, 414, 415, 451, 452, 453, 454, 455,
		456, 457, 458, 459, 460, 461, 462, 500, 501, 502, 503, 504, 505, 551,
	};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		assert_string_not_equal(rtsp_reason(codes[i]), "Unknown");
	assert_string_equal(rtsp_reason(200), "OK");
	assert_string_equal(rtsp_reason(454), "Session Not Found");
	assert_string_equal(rtsp_reason(461), "Unsupported transport");
	assert_string_equal(rtsp_reason(505), "RTSP Version not supported");
	assert_string_equal(rtsp_reason(551), "Option not supported");
	assert_string_equal(rtsp_reason(299), "Unknown");
	assert_string_equal(rtsp_reason(-1), "Unknown");

	char buf[64];
	const char *ok = "RTSP/1.0 200 OK\r\nCSeq: 3\r\n";
	const int ok_len = (int)strlen(ok);
	assert_int_equal(rtsp_response_begin(buf, sizeof buf, 200, 3), ok_len);
	assert_string_equal(buf, ok);
	assert_int_equal(rtsp_response_begin(buf, sizeof buf, 400, -1), (int)strlen("RTSP/1.0 400 Bad Request\r\n"));
	assert_string_equal(buf, "RTSP/1.0 400 Bad Request\r\n");
	assert_int_equal(rtsp_response_begin(buf, (size_t)ok_len + 1, 200, 3), ok_len);
	assert_int_equal(rtsp_response_begin(buf, (size_t)ok_len, 200, 3), -ENOSPC);
	assert_int_equal(rtsp_response_begin(buf, 10, 200, 3), -ENOSPC);
	assert_int_equal(rtsp_response_begin(NULL, 0, 200, 3), -ENOSPC);
	assert_int_equal(rtsp_response_begin(buf, sizeof buf, 42, 3), -EINVAL);

	/* What we write, we parse back. */
	assert_true(rtsp_response_begin(buf, sizeof buf, 459, 12) > 0);
	strcat(buf, "\r\n");
	assert_true(parse_resp_str(buf) > 0);
	assert_int_equal(resp.status, 459);
	assert_int_equal(resp.cseq, 12);
	assert_string_equal(resp.reason, "Aggregate operation not allowed");
}

/* ---------------------------------------------------------------- Transport */

static void test_transport_udp_unicast(void **state)
{
	struct rtsp_transport t[4];
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast;client_port=4588-4589", t, 4), 1);
	assert_int_equal(t[0].profile, RTSP_PROFILE_AVP);
	assert_int_equal(t[0].lower, RTSP_LOWER_UDP);
	assert_false(t[0].multicast);
	assert_true(t[0].unicast_given);
	assert_false(t[0].multicast_given);
	assert_int_equal(t[0].client_port[0], 4588);
	assert_int_equal(t[0].client_port[1], 4589);
	assert_int_equal(t[0].server_port[0], -1);
	assert_int_equal(t[0].interleaved[0], -1);
	assert_int_equal(t[0].port[0], -1);
	assert_int_equal(t[0].ttl, -1);
	assert_false(t[0].has_ssrc);
	assert_false(t[0].mode_record);
	assert_string_equal(t[0].destination, "");

	assert_int_equal(rtsp_parse_transports("RTP/AVP/UDP;unicast;client_port=5000", t, 4), 1);
	assert_int_equal(t[0].client_port[0], 5000);
	assert_int_equal(t[0].client_port[1], 5001);

	assert_int_equal(rtsp_parse_transports(" rtp/avp ; UNICAST ; client_port = 6970 - 6971 ", t, 4), 1);
	assert_int_equal(t[0].client_port[0], 6970);
	assert_int_equal(t[0].client_port[1], 6971);
	assert_false(t[0].multicast);
}

static void test_transport_tcp_interleaved(void **state)
{
	struct rtsp_transport t[2];
	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP;unicast;interleaved=0-1", t, 2), 1);
	assert_int_equal(t[0].lower, RTSP_LOWER_TCP);
	assert_int_equal(t[0].interleaved[0], 0);
	assert_int_equal(t[0].interleaved[1], 1);

	/* One channel: RTCP goes on the next one up (§10.12). */
	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP;interleaved=4", t, 2), 1);
	assert_int_equal(t[0].interleaved[0], 4);
	assert_int_equal(t[0].interleaved[1], 5);
	assert_true(t[0].multicast);   /* neither given: the RFC default */
	assert_false(t[0].unicast_given);
	assert_false(t[0].multicast_given);

	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP;unicast;interleaved=254-255", t, 2), 1);
	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP;unicast;interleaved=255", t, 2), -EINVAL);
	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP;unicast;interleaved=256-257", t, 2), -EINVAL);
}

static void test_transport_multicast(void **state)
{
	struct rtsp_transport t[1];
	assert_int_equal(rtsp_parse_transports(
		"RTP/AVP;multicast;destination=224.2.1.1;port=60000-60001;ttl=128", t, 1), 1);
	assert_true(t[0].multicast);
	assert_true(t[0].multicast_given);
	assert_string_equal(t[0].destination, "224.2.1.1");
	assert_int_equal(t[0].port[0], 60000);
	assert_int_equal(t[0].port[1], 60001);
	assert_int_equal(t[0].ttl, 128);

	assert_int_equal(rtsp_parse_transports("RTP/AVP;multicast;destination=\"ff15::1\";port=5004;source=10.0.0.1", t, 1), 1);
	assert_string_equal(t[0].destination, "ff15::1");
	assert_string_equal(t[0].source, "10.0.0.1");
	assert_int_equal(t[0].port[1], 5005);

	/* The last of unicast/multicast wins; both flags are kept. */
	assert_int_equal(rtsp_parse_transports("RTP/AVP;multicast;unicast", t, 1), 1);
	assert_false(t[0].multicast);
	assert_true(t[0].unicast_given && t[0].multicast_given);

	/* A bare "destination" is legal and means "the requester". */
	assert_int_equal(rtsp_parse_transports("RTP/AVP;multicast;destination", t, 1), 1);
	assert_string_equal(t[0].destination, "");
}

static void test_transport_savp(void **state)
{
	struct rtsp_transport t[1];
	assert_int_equal(rtsp_parse_transports("RTP/SAVP;unicast;client_port=4588-4589", t, 1), 1);
	assert_int_equal(t[0].profile, RTSP_PROFILE_SAVP);
	assert_int_equal(t[0].lower, RTSP_LOWER_UDP);
	assert_int_equal(rtsp_parse_transports("RTP/SAVP/UDP;unicast", t, 1), 1);
	assert_int_equal(t[0].profile, RTSP_PROFILE_SAVP);
	assert_int_equal(t[0].client_port[0], -1);
	assert_int_equal(rtsp_parse_transports("RTP/SAVP/TCP;unicast;interleaved=0-1", t, 1), 1);
	assert_int_equal(t[0].profile, RTSP_PROFILE_SAVP);
	assert_int_equal(t[0].lower, RTSP_LOWER_TCP);
	assert_int_equal(t[0].interleaved[1], 1);
}

static void test_transport_params(void **state)
{
	struct rtsp_transport t[1];
	assert_int_equal(rtsp_parse_transports(
		"RTP/AVP;unicast;client_port=1-2;server_port=3-4;ssrc=1a2B3c4D;mode=\"RECORD\";append", t, 1), 1);
	assert_int_equal(t[0].server_port[0], 3);
	assert_int_equal(t[0].server_port[1], 4);
	assert_true(t[0].has_ssrc);
	assert_int_equal(t[0].ssrc, 0x1A2B3C4D);
	assert_true(t[0].mode_record);
	assert_true(t[0].append);

	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast;mode=record", t, 1), 1);
	assert_true(t[0].mode_record);
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast;mode=PLAY", t, 1), 1);
	assert_false(t[0].mode_record);
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast;ssrc=ABC", t, 1), 1);
	assert_int_equal(t[0].ssrc, 0xABC);

	/* Unknown parameters are ignored; quoted commas do not split specs. */
	assert_int_equal(rtsp_parse_transports(
		"RTP/AVP;unicast;layers=2;x-foo=\"a,b;c\";client_port=9-10;rtcp-mux", t, 1), 1);
	assert_int_equal(t[0].client_port[0], 9);
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast;mode=\"PLAY,RECORD\"", t, 1), 1);
}

static void test_transport_lists(void **state)
{
	struct rtsp_transport t[4];
	assert_int_equal(rtsp_parse_transports(
		"RTP/AVP/TCP;unicast;interleaved=0-1, RTP/AVP;unicast;client_port=5000-5001,"
		"RTP/SAVP;unicast;client_port=6000-6001", t, 4), 3);
	assert_int_equal(t[0].lower, RTSP_LOWER_TCP);
	assert_int_equal(t[1].client_port[0], 5000);
	assert_int_equal(t[2].profile, RTSP_PROFILE_SAVP);

	/* Only `max` are stored. */
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast,RTP/AVP/TCP;unicast", t, 1), 1);
	assert_int_equal(t[0].lower, RTSP_LOWER_UDP);

	/* Unknown specs are skipped, in order. */
	assert_int_equal(rtsp_parse_transports(
		"RAW/RAW/UDP;unicast;client_port=1-2, x-real-rdt/udp;client_port=3, "
		"RTP/AVPF;unicast, RTP/AVP/SCTP;unicast, RTP/AVP;unicast;client_port=7-8", t, 4), 1);
	assert_int_equal(t[0].client_port[0], 7);
	assert_int_equal(rtsp_parse_transports("RAW/RAW/UDP;unicast", t, 4), 0);
	assert_int_equal(rtsp_parse_transports("RTP/AVP/TCP/extra;unicast", t, 4), 0);
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast,,", t, 4), 1);
	/* Validation only. */
	assert_int_equal(rtsp_parse_transports("RTP/AVP;unicast,RTP/AVP/TCP", NULL, 0), 0);
}

static void test_transport_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"  , ",
		"RTP/AVP;unicast;client_port=70000-70001",
		"RTP/AVP;unicast;client_port=65535",
		"RTP/AVP;unicast;client_port=abc",
		"RTP/AVP;unicast;client_port=-5",
		"RTP/AVP;unicast;client_port=5000-",
		"RTP/AVP;unicast;client_port=",
		"RTP/AVP;unicast;client_port",
		"RTP/AVP;unicast;client_port=1-2-3",
		"RTP/AVP;unicast;client_port=0x10",
		"RTP/AVP;unicast;client_port=1000000000000000000000",
		"RTP/AVP;multicast;ttl=300",
		"RTP/AVP;multicast;ttl=",
		"RTP/AVP;unicast;ssrc=XYZ",
		"RTP/AVP;unicast;ssrc=123456789",
		"RTP/AVP;unicast;ssrc=",
		"RTP/AVP;multicast;destination=evil\r\nX",
		"RTP/AVP;multicast;destination=a b",
		"RTP/AVP;multicast;destination=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"RAW/RAW/UDP;unicast, RTP/AVP;client_port=99999",
	};
	struct rtsp_transport t[2];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = rtsp_parse_transports(bad[i], t, 2);
		if (r != -EINVAL)
			fail_msg("case %zu: got %d", i, r);
	}
	assert_int_equal(rtsp_parse_transports(NULL, t, 2), -EINVAL);
	assert_int_equal(rtsp_parse_transports("RTP/AVP", t, -1), -EINVAL);
	/* Bad numbers in a skipped spec do not matter. */
	assert_int_equal(rtsp_parse_transports("RAW/RAW/UDP;client_port=99999", t, 2), 0);
}

static void test_transport_format(void **state)
{
	struct rtsp_transport t;
	char buf[256];
	rtsp_transport_init(&t);
	t.multicast = false;
	t.client_port[0] = 4588;
	t.client_port[1] = 4589;
	t.server_port[0] = 6256;
	t.server_port[1] = 6257;
	t.has_ssrc = true;
	t.ssrc = 0x1A2B3C4D;
	const char *udp = "RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257;ssrc=1A2B3C4D";
	assert_int_equal(rtsp_format_transport(&t, buf, sizeof buf), (int)strlen(udp));
	assert_string_equal(buf, udp);
	assert_int_equal(rtsp_format_transport(&t, buf, strlen(udp) + 1), (int)strlen(udp));
	assert_int_equal(rtsp_format_transport(&t, buf, strlen(udp)), -ENOSPC);
	assert_int_equal(rtsp_format_transport(&t, NULL, 0), -ENOSPC);

	rtsp_transport_init(&t);
	t.multicast = false;
	t.lower = RTSP_LOWER_TCP;
	t.interleaved[0] = 0;
	t.interleaved[1] = 1;
	t.has_ssrc = true;
	t.ssrc = 0xDEADBEEF;
	assert_true(rtsp_format_transport(&t, buf, sizeof buf) > 0);
	assert_string_equal(buf, "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=DEADBEEF");

	t.profile = RTSP_PROFILE_SAVP;
	t.has_ssrc = false;
	assert_true(rtsp_format_transport(&t, buf, sizeof buf) > 0);
	assert_string_equal(buf, "RTP/SAVP/TCP;unicast;interleaved=0-1");

	rtsp_transport_init(&t);
	strcpy(t.destination, "224.2.1.1");
	t.port[0] = 60000;
	t.port[1] = 60001;
	t.ttl = 128;
	assert_true(rtsp_format_transport(&t, buf, sizeof buf) > 0);
	assert_string_equal(buf, "RTP/AVP;multicast;destination=224.2.1.1;port=60000-60001;ttl=128;mode=\"PLAY\"");

	rtsp_transport_init(&t);
	t.multicast = false;
	t.mode_record = true;
	t.append = true;
	t.client_port[0] = 10;
	assert_true(rtsp_format_transport(&t, buf, sizeof buf) > 0);
	assert_string_equal(buf, "RTP/AVP;unicast;client_port=10;mode=\"RECORD\";append");
}

static void test_transport_round_trip(void **state)
{
	static const char *const specs[] = {
		"RTP/AVP;unicast;client_port=4588-4589",
		"RTP/AVP/TCP;unicast;interleaved=2",
		"RTP/SAVP/UDP;unicast;client_port=5000;server_port=6000-6001;ssrc=00000001",
		"RTP/AVP;multicast;destination=232.1.2.3;source=192.0.2.7;port=5004-5005;ttl=16",
		"RTP/AVP;unicast;client_port=0-65535;mode=record;append",
		"RTP/AVP;destination=[::1];client_port=1",
	};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct rtsp_transport a, b;
		char buf[256];
		assert_int_equal(rtsp_parse_transports(specs[i], &a, 1), 1);
		assert_true(rtsp_format_transport(&a, buf, sizeof buf) > 0);
		assert_int_equal(rtsp_parse_transports(buf, &b, 1), 1);
		assert_int_equal(a.profile, b.profile);
		assert_int_equal(a.lower, b.lower);
		assert_int_equal(a.multicast, b.multicast);
		assert_memory_equal(a.client_port, b.client_port, sizeof a.client_port);
		assert_memory_equal(a.server_port, b.server_port, sizeof a.server_port);
		assert_memory_equal(a.port, b.port, sizeof a.port);
		assert_memory_equal(a.interleaved, b.interleaved, sizeof a.interleaved);
		assert_int_equal(a.ttl, b.ttl);
		assert_string_equal(a.destination, b.destination);
		assert_string_equal(a.source, b.source);
		assert_int_equal(a.mode_record, b.mode_record);
		assert_int_equal(a.has_ssrc, b.has_ssrc);
		assert_int_equal(a.ssrc, b.ssrc);
		assert_int_equal(a.append, b.append);
	}
}

/* ---------------------------------------------------------------- Range */

static double distance(double a, double b)
{
	return a > b ? a - b : b - a;
}

static void assert_close(double got, double want)
{
	if (distance(got, want) > 1e-6)
		fail_msg("got %.9f, want %.9f", got, want);
}

static void test_range_npt(void **state)
{
	struct rtsp_range r;
	assert_int_equal(rtsp_parse_range("npt=123.45-125", &r), 0);
	assert_int_equal(r.kind, RTSP_RANGE_NPT);
	assert_false(r.start_now);
	assert_close(r.start, 123.45);
	assert_true(r.has_end);
	assert_close(r.end, 125);

	assert_int_equal(rtsp_parse_range("npt=12:05:35.3-", &r), 0);
	assert_close(r.start, 12 * 3600 + 5 * 60 + 35.3);
	assert_false(r.has_end);

	assert_int_equal(rtsp_parse_range("npt=now-", &r), 0);
	assert_true(r.start_now);
	assert_false(r.has_end);

	assert_int_equal(rtsp_parse_range("npt=-20", &r), 0);
	assert_false(r.start_now);
	assert_close(r.start, 0);
	assert_true(r.has_end);
	assert_close(r.end, 20);

	assert_int_equal(rtsp_parse_range("npt=0-", &r), 0);
	assert_int_equal(rtsp_parse_range("NPT = 0.000 - 10.5 ;time=19970123T143720Z", &r), 0);
	assert_close(r.end, 10.5);
	assert_int_equal(rtsp_parse_range("npt=1.-2", &r), 0);
	assert_close(r.start, 1);
	assert_int_equal(rtsp_parse_range("npt=100:00:00-", &r), 0);
	assert_close(r.start, 360000);
	/* A decreasing range is left for the caller to judge (reverse play). */
	assert_int_equal(rtsp_parse_range("npt=30-10", &r), 0);
}

static void test_range_clock_smpte(void **state)
{
	struct rtsp_range r;
	assert_int_equal(rtsp_parse_range("clock=19961108T143720.25Z-", &r), 0);
	assert_int_equal(r.kind, RTSP_RANGE_CLOCK);
	assert_close(r.start, 847463840.25);
	assert_false(r.has_end);

	assert_int_equal(rtsp_parse_range("clock=20090615T114900.440Z-20090615T115000Z", &r), 0);
	assert_close(r.start, 1245066540.44);
	assert_close(r.end, 1245066600);
	assert_int_equal(rtsp_parse_range("clock=20000229T000000Z-", &r), 0);
	assert_close(r.start, 951782400);
	assert_int_equal(rtsp_parse_range("clock=19691231T235959Z-", &r), 0);
	assert_close(r.start, -1);
	assert_int_equal(rtsp_parse_range("clock=00010101T000000Z-", &r), 0);
	assert_close(r.start, -62135596800.0);

	assert_int_equal(rtsp_parse_range("smpte=10:07:33-", &r), 0);
	assert_int_equal(r.kind, RTSP_RANGE_SMPTE);
	assert_close(r.start, 10 * 3600 + 7 * 60 + 33);
	assert_false(r.has_end);
	assert_int_equal(rtsp_parse_range("smpte=10:07:33:15.50-10:07:34", &r), 0);
	assert_close(r.start, 36453 + 15.5 / 30);
	assert_close(r.end, 36454);
	assert_int_equal(rtsp_parse_range("smpte-25=0:00:01:24-", &r), 0);
	assert_close(r.start, 1 + 24.0 / 25);
	assert_int_equal(rtsp_parse_range("smpte-30-drop=0:00:01:29-", &r), 0);
}

static void test_range_errors(void **state)
{
	static const char *const bad[] = {
		"", "garbage", "npt", "npt=", "npt=-", "npt=10", "npt=abc-", "npt=1-2-3",
		"npt=now-now", "npt=1e5-", "npt=inf-", "npt=+1-", "npt=0x10-", "npt=1:60:00-",
		"npt=1:00:60-", "npt=1:2-", "npt=1:2:3:4-", "npt=1:002:03-", "npt=1::3-",
		"npt=1234567890123-", "npt=100000000000-", "npt=27777778:00:00-",
		"clock=19961308T143720Z-", "clock=19960230T000000Z-", "clock=19961108T243720Z-",
		"clock=19961108143720Z-", "clock=-19961108T143720Z", "clock=19961108T143720.Z-",
		"clock=19961108T1437Z-", "clock=19961108T143720.5x-",
		"smpte=10:07-", "smpte=10:60:00-", "smpte=10:07:33:30-", "smpte-25=0:0:0:25-",
		"smpte=-10:07:33", "smpte=1:2:3.100-", "=1-2", "npt 1-2",
	};
	struct rtsp_range r;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int ret = rtsp_parse_range(bad[i], &r);
		if (ret != -EINVAL)
			fail_msg("\"%s\": got %d", bad[i], ret);
	}
	assert_int_equal(rtsp_parse_range("bytes=0-100", &r), -ENOTSUP);
	assert_int_equal(rtsp_parse_range("x-frames=1-2", &r), -ENOTSUP);
	assert_int_equal(rtsp_parse_range(NULL, &r), -EINVAL);
}

static void test_range_format(void **state)
{
	struct rtsp_range r = { .kind = RTSP_RANGE_NPT, .start = 12.5 };
	char buf[96];
	assert_int_equal(rtsp_format_range(&r, buf, sizeof buf), 11);
	assert_string_equal(buf, "npt=12.500-");
	r.has_end = true;
	r.end = 20;
	assert_true(rtsp_format_range(&r, buf, sizeof buf) > 0);
	assert_string_equal(buf, "npt=12.500-20.000");
	r.start_now = true;
	r.has_end = false;
	assert_true(rtsp_format_range(&r, buf, sizeof buf) > 0);
	assert_string_equal(buf, "npt=now-");
	assert_int_equal(rtsp_format_range(&r, buf, 8), -ENOSPC);

	r = (struct rtsp_range){ .kind = RTSP_RANGE_CLOCK, .start = 1245066540.44, .has_end = true, .end = 1245066600 };
	assert_true(rtsp_format_range(&r, buf, sizeof buf) > 0);
	assert_string_equal(buf, "clock=20090615T114900.440Z-20090615T115000Z");
	r = (struct rtsp_range){ .kind = RTSP_RANGE_CLOCK, .start = -1 };
	assert_true(rtsp_format_range(&r, buf, sizeof buf) > 0);
	assert_string_equal(buf, "clock=19691231T235959Z-");

	r = (struct rtsp_range){ .kind = RTSP_RANGE_SMPTE, .start = 36453.5 };
	assert_true(rtsp_format_range(&r, buf, sizeof buf) > 0);
	assert_string_equal(buf, "smpte=10:07:33:15-");

	r = (struct rtsp_range){ .kind = RTSP_RANGE_NPT, .start = -1 };
	assert_int_equal(rtsp_format_range(&r, buf, sizeof buf), -EINVAL);
	r = (struct rtsp_range){ .kind = RTSP_RANGE_NPT, .start = NAN };
	assert_int_equal(rtsp_format_range(&r, buf, sizeof buf), -EINVAL);
	r = (struct rtsp_range){ .kind = RTSP_RANGE_CLOCK, .start = 1e300 };
	assert_int_equal(rtsp_format_range(&r, buf, sizeof buf), -EINVAL);

	/* Parse -> format -> parse keeps the values. */
	static const char *const forms[] = {
		"npt=123.45-125", "npt=12:05:35.3-", "npt=now-", "npt=-20",
		"clock=19961108T143720.25Z-", "clock=20090615T114900.440Z-20090615T115000Z",
		"smpte=10:07:33-", "smpte=10:07:33:06-10:07:40",
		"npt=15.1-235.27",   /* 235.27 * 1000 is 235269.99999...: rounded, not truncated */
		"npt=99999999999.9999-", "clock=99991231T235959.9999Z-", "smpte=99:59:59:29.99-",
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		struct rtsp_range a, b;
		assert_int_equal(rtsp_parse_range(forms[i], &a), 0);
		assert_true(rtsp_format_range(&a, buf, sizeof buf) > 0);
		assert_int_equal(rtsp_parse_range(buf, &b), 0);
		assert_int_equal(a.kind, b.kind);
		assert_int_equal(a.start_now, b.start_now);
		assert_int_equal(a.has_end, b.has_end);
		assert_true(distance(a.start, b.start) < 1e-3);
		assert_true(distance(a.end, b.end) < 1e-3);
	}
}

/* ---------------------------------------------------------------- Session, Require */

static void test_session(void **state)
{
	char id[32];
	assert_int_equal(rtsp_parse_session("12345678", id, sizeof id), 0);
	assert_string_equal(id, "12345678");
	assert_int_equal(rtsp_session_timeout("12345678"), -ENOENT);

	assert_int_equal(rtsp_parse_session("12345678;timeout=60", id, sizeof id), 0);
	assert_string_equal(id, "12345678");
	assert_int_equal(rtsp_session_timeout("12345678;timeout=60"), 60);
	assert_int_equal(rtsp_parse_session(" A1b2$-_.+ ; timeout = 30", id, sizeof id), 0);
	assert_string_equal(id, "A1b2$-_.+");
	assert_int_equal(rtsp_session_timeout(" A1b2$-_.+ ; Timeout = 30"), 30);
	assert_int_equal(rtsp_session_timeout("abc;foo=1;timeout=5"), 5);
	assert_int_equal(rtsp_session_timeout("abc;timeout=x"), -EINVAL);
	assert_int_equal(rtsp_session_timeout("abc;timeout="), -EINVAL);
	assert_int_equal(rtsp_session_timeout("abc;timeout=1234567890"), -EINVAL);

	assert_int_equal(rtsp_parse_session("", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session(";timeout=60", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session("abc def", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session("ab/c", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session("ab\"c\"", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session("\xc3\xa9t\xc3\xa9", id, sizeof id), -EINVAL);
	assert_int_equal(rtsp_parse_session("12345678", id, 8), -ENOSPC);
	assert_int_equal(rtsp_parse_session("12345678", id, 9), 0);
	assert_int_equal(rtsp_parse_session(NULL, id, sizeof id), -EINVAL);
}

struct tag_list {
	char tags[4][64];
	int n;
	int stop_at;
};

static int collect_tag(const char *tag, size_t len, void *arg)
{
	struct tag_list *l = arg;
	if (l->n == l->stop_at)
		return 551;
	snprintf(l->tags[l->n++], sizeof l->tags[0], "%.*s", (int)len, tag);
	return 0;
}

static void test_require(void **state)
{
	struct tag_list l = { .stop_at = -1 };
	assert_int_equal(rtsp_require_foreach(" www.onvif.org/ver20/backchannel ,onvif-replay,, ", collect_tag, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.tags[0], "www.onvif.org/ver20/backchannel");
	assert_string_equal(l.tags[1], "onvif-replay");

	struct tag_list stop = { .stop_at = 1 };
	assert_int_equal(rtsp_require_foreach("a, b, c", collect_tag, &stop), 551);
	assert_int_equal(stop.n, 1);

	/* Tags are tokens: quotes do not protect a comma. */
	struct tag_list quoted = { .stop_at = -1 };
	assert_int_equal(rtsp_require_foreach("a \"b,c\"", collect_tag, &quoted), 0);
	assert_int_equal(quoted.n, 2);
	assert_string_equal(quoted.tags[0], "a \"b");
	assert_string_equal(quoted.tags[1], "c\"");

	struct tag_list none = { .stop_at = -1 };
	assert_int_equal(rtsp_require_foreach("", collect_tag, &none), 0);
	assert_int_equal(none.n, 0);
	assert_int_equal(rtsp_require_foreach(NULL, collect_tag, &none), -EINVAL);
	assert_int_equal(rtsp_require_foreach("a", NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_simple),
		cmocka_unit_test(test_request_no_headers_and_asterisk),
		cmocka_unit_test(test_request_incomplete_prefixes),
		cmocka_unit_test(test_request_pipelined),
		cmocka_unit_test(test_request_line_ends),
		cmocka_unit_test(test_request_bare_cr_then_body),
		cmocka_unit_test(test_request_leading_blank_lines),
		cmocka_unit_test(test_request_body_split),
		cmocka_unit_test(test_request_cseq_forms),
		cmocka_unit_test(test_request_oversize),
		cmocka_unit_test(test_request_too_many_headers),
		cmocka_unit_test(test_request_content_length),
		cmocka_unit_test(test_request_malformed),
		cmocka_unit_test(test_request_garbage_rejected_early),
		cmocka_unit_test(test_request_nul_bytes),
		cmocka_unit_test(test_request_http_tunnel),
		cmocka_unit_test(test_request_versions),
		cmocka_unit_test(test_request_folded_and_trimmed),
		cmocka_unit_test(test_request_duplicate_headers),
		cmocka_unit_test(test_request_bad_arguments),
		cmocka_unit_test(test_response_basic),
		cmocka_unit_test(test_response_malformed),
		cmocka_unit_test(test_reason_and_status_line),
		cmocka_unit_test(test_transport_udp_unicast),
		cmocka_unit_test(test_transport_tcp_interleaved),
		cmocka_unit_test(test_transport_multicast),
		cmocka_unit_test(test_transport_savp),
		cmocka_unit_test(test_transport_params),
		cmocka_unit_test(test_transport_lists),
		cmocka_unit_test(test_transport_bad),
		cmocka_unit_test(test_transport_format),
		cmocka_unit_test(test_transport_round_trip),
		cmocka_unit_test(test_range_npt),
		cmocka_unit_test(test_range_clock_smpte),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_range_format),
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_require),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
