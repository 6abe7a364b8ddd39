/* fuzz_ws.c — libFuzzer target for the WebSocket frame parser
 * (proto/ws.c) that reads every client frame of RTSP over WebSocket.
 *
 * Beyond "no crash": a complete frame never claims more bytes than were
 * given, its header fits in it, control frames are short and final; the
 * input parsed frame after frame is consumed exactly or stops at an error
 * or an incomplete tail; a header we build parses back to its length; the
 * UTF-8 check gives the same verdict fed whole or split anywhere.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"
#include "proto/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		struct ws_frame f;
		long n = ws_parse_frame(data + off, size - off, &f);
		CHECK(n == 0 || n == -EPROTO || n == -EMSGSIZE || n > 0);
		if (n <= 0)
			break;
		CHECK((size_t)n <= size - off);
		CHECK(f.header_len >= 2 && f.header_len <= 14);
		CHECK((size_t)n == f.header_len + f.len);
		CHECK(f.len <= WS_MAX_CLIENT_PAYLOAD);
		if (f.opcode >= WS_CLOSE)
			CHECK(f.fin && f.len <= 125);
		off += (size_t)n;
	}
	if (size >= 8) {
		uint64_t len;
		memcpy(&len, data, sizeof len);
		len %= WS_MAX_CLIENT_PAYLOAD + 1;
		uint8_t hdr[WS_MAX_HEADER + 4];
		size_t h = ws_frame_header(hdr, WS_BINARY, len);
		/* add a zero mask so the parser, which wants client frames, reads it */
		hdr[1] |= 0x80;
		memset(hdr + h, 0, 4);
		struct ws_frame f;
		long n = ws_parse_frame(hdr, h + 4, &f);
		CHECK(len == 0 ? n == (long)(h + 4) : n == 0);
		CHECK(f.len == len && f.header_len == h + 4);
	}
	uint32_t whole = 0, split = 0;
	int rw = ws_utf8_feed(&whole, data, size);
	size_t cut = size ? data[0] % (size + 1) : 0;
	int rs = ws_utf8_feed(&split, data, cut);
	if (rs == 0)
		rs = ws_utf8_feed(&split, data + cut, size - cut);
	CHECK(rw == 0 || rw == -EILSEQ);
	CHECK(rw == rs && (rw < 0 || whole == split));
	return 0;
}
