/* test_ws.c — unit tests of WebSocket framing and the handshake key
 * (proto/ws.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/ws.h"

static void test_accept_key(void **state)
{
	(void)state;
	char out[29];
	/* RFC 6455 §1.3's example. */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key("short", out), -EINVAL);
	assert_int_equal(ws_accept_key("!!!!!!!!!!!!!!!!!!!!!!!=", out), -EINVAL);
}

static void test_parse_masked(void **state)
{
	(void)state;
	/* "Hello", masked, from RFC 6455 §5.7. */
	uint8_t f1[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_frame f;
	for (size_t i = 0; i < sizeof f1; i++)
		assert_int_equal(ws_parse_frame(f1, i, &f), 0);   /* incomplete */
	assert_int_equal(ws_parse_frame(f1, sizeof f1, &f), (long)sizeof f1);
	assert_true(f.fin && f.masked);
	assert_int_equal(f.opcode, WS_TEXT);
	assert_int_equal(f.len, 5);
	ws_unmask(f1 + f.header_len, 5, f.mask, 0);
	assert_memory_equal(f1 + f.header_len, "Hello", 5);
	/* Unmasking in pieces gives the same. */
	uint8_t f2[] = { 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	ws_unmask(f2, 2, f.mask, 0);
	ws_unmask(f2 + 2, 3, f.mask, 2);
	assert_memory_equal(f2, "Hello", 5);
}

static void test_lengths_and_errors(void **state)
{
	(void)state;
	uint8_t buf[WS_MAX_HEADER + 4 + 300];
	memset(buf, 0, sizeof buf);
	size_t h = ws_frame_header(buf, WS_BINARY, 300);
	assert_int_equal(h, 4);
	buf[1] |= 0x80;
	struct ws_frame f;
	assert_int_equal(ws_parse_frame(buf, h + 4 + 300, &f), (long)(h + 4 + 300));
	assert_int_equal(f.len, 300);
	assert_int_equal(ws_frame_header(buf, WS_BINARY, 70000), 10);
	assert_int_equal(ws_frame_header(buf, WS_BINARY, 125), 2);
	/* reserved bits, unknown opcode, long or fragmented control frames */
	uint8_t rsv[] = { 0xc2, 0x80, 0, 0, 0, 0 };
	assert_int_equal(ws_parse_frame(rsv, sizeof rsv, &f), -EPROTO);
	uint8_t op3[] = { 0x83, 0x80, 0, 0, 0, 0 };
	assert_int_equal(ws_parse_frame(op3, sizeof op3, &f), -EPROTO);
	uint8_t ping_long[] = { 0x89, 0xfe, 0x00, 0x7e };
	assert_int_equal(ws_parse_frame(ping_long, sizeof ping_long, &f), -EPROTO);
	uint8_t ping_frag[] = { 0x09, 0x80, 0, 0, 0, 0 };
	assert_int_equal(ws_parse_frame(ping_frag, sizeof ping_frag, &f), -EPROTO);
	uint8_t huge[] = { 0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0 };
	assert_int_equal(ws_parse_frame(huge, sizeof huge, &f), -EMSGSIZE);
	/* unmasked: parsed, reported */
	uint8_t plain[] = { 0x82, 0x01, 'x' };
	assert_int_equal(ws_parse_frame(plain, sizeof plain, &f), 3);
	assert_false(f.masked);
}

static int utf8(const char *s, size_t n)
{
	uint32_t st = 0;
	int r = ws_utf8_feed(&st, (const uint8_t *)s, n);
	return r < 0 ? r : st ? 1 : 0;   /* 1: incomplete at the end */
}

static void test_utf8(void **state)
{
	assert_int_equal(utf8("RTSP/1.0 ok", 11), 0);
	assert_int_equal(utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), 0);   /* é € 😀 */
	assert_int_equal(utf8("\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", 10), 0); /* edges */
	assert_int_equal(utf8("\xc0\xaf", 2), -EILSEQ);        /* overlong '/' */
	assert_int_equal(utf8("\xe0\x9f\xbf", 3), -EILSEQ);    /* overlong 3-byte */
	assert_int_equal(utf8("\xed\xa0\x80", 3), -EILSEQ);    /* surrogate */
	assert_int_equal(utf8("\xf4\x90\x80\x80", 4), -EILSEQ);/* above U+10FFFF */
	assert_int_equal(utf8("\xf5", 1), -EILSEQ);
	assert_int_equal(utf8("\x80", 1), -EILSEQ);              /* stray continuation */
	assert_int_equal(utf8("a\xe2\x28", 3), -EILSEQ);
	assert_int_equal(utf8("\xe2\x82", 2), 1);               /* incomplete */
	/* A character split at every offset across two feeds. */
	const char *s = "x\xf0\x9f\x98\x80y";
	for (size_t cut = 0; cut <= 6; cut++) {
		uint32_t st = 0;
		assert_int_equal(ws_utf8_feed(&st, (const uint8_t *)s, cut), 0);
		assert_int_equal(ws_utf8_feed(&st, (const uint8_t *)s + cut, 6 - cut), 0);
		assert_int_equal(st, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_parse_masked),
		cmocka_unit_test(test_lengths_and_errors),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}
