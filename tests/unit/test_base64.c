/* test_base64.c — unit tests of the tunnel's streaming base64 decoder
 * (proto/base64.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/base64.h"

static const char request[] = "DESCRIBE rtsp://127.0.0.1/test RTSP/1.0\r\nCSeq: 2\r\n\r\n";

/* Decodes s in pieces of `piece` bytes; returns the bytes out. */
static size_t decode_pieces(const char *s, size_t piece, uint8_t *out, size_t cap, int *status)
{
	struct b64_stream st = { 0 };
	size_t o = 0, len = strlen(s);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < piece ? len - off : piece, used;
		o += b64_stream_decode(&st, (const uint8_t *)s + off, n, out + o, cap - o, &used, status);
		off += used;
		if (*status)
			return o;
	}
	return o;
}

static void test_every_split(void **state)
{
	(void)state;
	char enc[256];
	b64_encode((const uint8_t *)request, strlen(request), enc);
	for (size_t piece = 1; piece <= strlen(enc); piece++) {
		uint8_t out[256];
		int status;
		size_t n = decode_pieces(enc, piece, out, sizeof out, &status);
		assert_int_equal(status, 0);
		assert_int_equal(n, strlen(request));
		assert_memory_equal(out, request, n);
	}
}

static void test_padded_blobs_and_whitespace(void **state)
{
	(void)state;
	/* "A", "BC", "DEF" each encoded alone, with CRLF and spaces between. */
	const char *s = "QQ==\r\n QkM=\tREVG\n";
	uint8_t out[32];
	int status;
	size_t n = decode_pieces(s, 3, out, sizeof out, &status);
	assert_int_equal(status, 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "ABCDEF", 6);
}

static void test_raw_dollar(void **state)
{
	(void)state;
	struct b64_stream st = { 0 };
	const char *s = "QUJD$\x01\x00\x02xy";
	uint8_t out[32];
	size_t used;
	int status;
	size_t n = b64_stream_decode(&st, (const uint8_t *)s, 12, out, sizeof out, &used, &status);
	assert_int_equal(status, 1);
	assert_int_equal(used, 4);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "ABC", 3);
	/* '$' in the middle of a group is not a raw frame: an error. */
	memset(&st, 0, sizeof st);
	b64_stream_decode(&st, (const uint8_t *)"QU$", 3, out, sizeof out, &used, &status);
	assert_int_equal(status, -EINVAL);
}

static void test_bad_input(void **state)
{
	(void)state;
	uint8_t out[32];
	size_t used;
	int status;
	struct b64_stream st = { 0 };
	b64_stream_decode(&st, (const uint8_t *)"QUJD!", 5, out, sizeof out, &used, &status);
	assert_int_equal(status, -EINVAL);
	assert_int_equal(used, 4);
	memset(&st, 0, sizeof st);
	b64_stream_decode(&st, (const uint8_t *)"Q===", 4, out, sizeof out, &used, &status);
	assert_int_equal(status, -EINVAL);   /* padding after one character */
	memset(&st, 0, sizeof st);
	b64_stream_decode(&st, (const uint8_t *)"=", 1, out, sizeof out, &used, &status);
	assert_int_equal(status, -EINVAL);
}

static void test_output_full(void **state)
{
	(void)state;
	struct b64_stream st = { 0 };
	uint8_t out[4];
	size_t used;
	int status;
	size_t n = b64_stream_decode(&st, (const uint8_t *)"QUJDREVG", 8, out, sizeof out, &used, &status);
	assert_int_equal(status, 0);
	assert_int_equal(n, 3);
	assert_true(used < 8);
	size_t used2;
	n = b64_stream_decode(&st, (const uint8_t *)"QUJDREVG" + used, 8 - used, out, sizeof out, &used2, &status);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "DEF", 3);
	assert_int_equal(used + used2, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_padded_blobs_and_whitespace),
		cmocka_unit_test(test_raw_dollar),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_output_full),
	};
	return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
