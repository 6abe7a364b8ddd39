/* fuzz_jitter.c — libFuzzer target for the back channel's RTP header
 * parser and jitter buffer (talk/jitter.c), which take whatever a talker
 * sends.
 *
 * The input is a sequence of records: u16 length, u8 milliseconds to
 * advance the clock, then that many bytes of packet. Beyond "no crash":
 * a parsed payload lies inside the packet; what comes out comes in
 * sequence order (one more than the last, unless the stream restarted),
 * never more packets out than went in, payloads no longer than allowed.
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"
#include "talk/jitter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jitter j;
	jitter_init(&j, 8000, 40000);
	int64_t now = 0;
	size_t off = 0;
	bool have_last = false;
	uint16_t last_seq = 0;
	uint64_t restarts = 0;
	while (off + 3 <= size) {
		size_t len = (size_t)(data[off] << 8 | data[off + 1]) % 2048;
		now += data[off + 2] * 1000;
		off += 3;
		if (len > size - off)
			len = size - off;
		struct rtp_view v;
		if (rtp_parse(data + off, len, &v) == 0)
			CHECK(v.payload >= data + off + 12 && v.payload + v.payload_len <= data + off + len);
		jitter_put(&j, data + off, len, now);
		off += len;
		struct jitter_out o;
		enum jitter_result r;
		while ((r = jitter_get(&j, now, &o)) != JITTER_NONE) {
			if (j.stats.restarts != restarts) {
				restarts = j.stats.restarts;
				have_last = false;
			}
			if (have_last)
				CHECK(o.seq == (uint16_t)(last_seq + 1));
			have_last = true;
			last_seq = o.seq;
			if (r == JITTER_PACKET)
				CHECK(o.len <= JITTER_MAX_PAYLOAD);
		}
		CHECK(j.stats.played <= j.stats.received);
	}
	return 0;
}
