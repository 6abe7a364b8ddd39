/* fuzz_base64.c — libFuzzer target for the tunnel's streaming base64
 * decoder (proto/base64.c).
 *
 * Arbitrary input, fed in pieces whose sizes come from the input itself,
 * must never write past the output or report more consumed than given; and
 * the input taken as raw bytes, encoded and fed back split the same way,
 * must decode to exactly those bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"
#include "proto/base64.h"

static size_t decode_split(const uint8_t *in, size_t len, uint8_t seed, uint8_t *out, size_t cap, int *last)
{
	struct b64_stream st = { 0 };
	size_t o = 0, off = 0;
	size_t piece = (size_t)(seed % 7) + 1;
	*last = 0;
	while (off < len) {
		size_t n = len - off < piece ? len - off : piece;
		size_t used = 0;
		int status;
		size_t w = b64_stream_decode(&st, in + off, n, out + o, cap - o, &used, &status);
		CHECK(used <= n);
		CHECK(w <= cap - o);
		o += w;
		off += used;
		*last = status;
		if (status != 0)
			break;
		CHECK(used == n || cap - o < 3);
		if (used < n && cap - o < 3)
			break;
		piece = piece % 5 + 1;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536 * 3 / 4 + 8];
	static char enc[65536 * 4 / 3 + 8];
	if (size > 49152)
		return 0;
	int last;
	size_t cap = size * 3 / 4 + 3;
	decode_split(data, size, size ? data[0] : 0, out, cap, &last);
	CHECK(last == 0 || last == 1 || last == -EINVAL);

	size_t elen = b64_encode(data, size, enc);
	CHECK(elen == 4 * ((size + 2) / 3));
	size_t dlen = decode_split((const uint8_t *)enc, elen, size ? data[size - 1] : 0, out, sizeof out, &last);
	CHECK(last == 0);
	CHECK(dlen == size);
	CHECK(memcmp(out, data, size) == 0);
	return 0;
}
