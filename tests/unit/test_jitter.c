/* test_jitter.c — unit tests of the back channel's jitter buffer and RTP
 * header parser (talk/jitter.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "talk/jitter.h"

#define MS 1000
#define SSRC 0x11223344u

/* A PCMU-like packet: 20 ms = 160 ticks at 8 kHz, payload = one byte of seq. */
static size_t packet(uint8_t *buf, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	buf[0] = 0x80;
	buf[1] = 0;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	buf[4] = (uint8_t)(ts >> 24);
	buf[5] = (uint8_t)(ts >> 16);
	buf[6] = (uint8_t)(ts >> 8);
	buf[7] = (uint8_t)ts;
	buf[8] = (uint8_t)(ssrc >> 24);
	buf[9] = (uint8_t)(ssrc >> 16);
	buf[10] = (uint8_t)(ssrc >> 8);
	buf[11] = (uint8_t)ssrc;
	memset(buf + 12, (uint8_t)seq, 160);
	return 172;
}

static int put(struct jitter *j, uint16_t seq, int64_t now)
{
	uint8_t b[200];
	size_t n = packet(b, seq, 1000u + (uint32_t)(uint16_t)(seq - 100) * 160u, SSRC);
	return jitter_put(j, b, n, now);
}

static void test_rtp_parse(void **state)
{
	uint8_t b[200];
	struct rtp_view v;
	size_t n = packet(b, 7, 1234, SSRC);
	assert_int_equal(rtp_parse(b, n, &v), 0);
	assert_int_equal(v.seq, 7);
	assert_int_equal(v.ts, 1234);
	assert_int_equal(v.ssrc, SSRC);
	assert_int_equal(v.payload_len, 160);
	/* two CSRCs, an extension of one word, 3 bytes of padding */
	uint8_t x[64] = { 0xb2, 0x80, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3 };
	memset(x + 12, 0, 8);                         /* CSRCs */
	x[20] = 0xbe; x[21] = 0xde; x[22] = 0; x[23] = 1; /* extension header, 1 word */
	memset(x + 24, 0, 4);
	memcpy(x + 28, "abcd", 4);
	x[32] = 0; x[33] = 0; x[34] = 3;              /* padding, last byte = 3 */
	assert_int_equal(rtp_parse(x, 35, &v), 0);
	assert_true(v.marker);
	assert_int_equal(v.payload_len, 4);
	assert_memory_equal(v.payload, "abcd", 4);
	/* malformed */
	assert_int_equal(rtp_parse(b, 11, &v), -EINVAL);
	b[0] = 0x40;
	assert_int_equal(rtp_parse(b, n, &v), -EINVAL);   /* version 1 */
	x[34] = 40;
	assert_int_equal(rtp_parse(x, 35, &v), -EINVAL);  /* padding larger than the payload */
	x[34] = 3;
	x[23] = 200;
	assert_int_equal(rtp_parse(x, 35, &v), -EINVAL);  /* extension past the end */
	x[0] = 0x8f;
	assert_int_equal(rtp_parse(x, 35, &v), -EINVAL);  /* 15 CSRCs in 35 bytes */
}

/* In-order packets come out in order, each at arrival + delay. */
static void test_in_order_timing(void **state)
{
	struct jitter j;
	jitter_init(&j, 8000, 40 * MS);
	struct jitter_out o;
	assert_int_equal(jitter_get(&j, 0, &o), JITTER_NONE);
	for (int i = 0; i < 10; i++)
		assert_int_equal(put(&j, (uint16_t)(100 + i), i * 20 * MS), 0);
	assert_int_equal(jitter_get(&j, 39 * MS, &o), JITTER_NONE);
	assert_int_equal(jitter_next_due(&j), 40 * MS);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(jitter_get(&j, (40 + i * 20) * MS, &o), JITTER_PACKET);
		assert_int_equal(o.seq, 100 + i);
		assert_int_equal(o.len, 160);
		assert_int_equal(o.payload[0], (uint8_t)(100 + i));
		assert_int_equal(jitter_get(&j, (40 + i * 20) * MS, &o), JITTER_NONE);
	}
	assert_int_equal(j.stats.played, 10);
	assert_int_equal(jitter_next_due(&j), INT64_MAX);
}

/* Reordered packets are put back in order; duplicates and late ones are
 * dropped and counted. */
static void test_reorder_duplicates_late(void **state)
{
	struct jitter j;
	jitter_init(&j, 8000, 40 * MS);
	struct jitter_out o;
	assert_int_equal(put(&j, 100, 0), 0);
	assert_int_equal(put(&j, 102, 40 * MS), 0);
	assert_int_equal(put(&j, 101, 41 * MS), 0);   /* late but in time */
	assert_int_equal(put(&j, 101, 42 * MS), -EALREADY);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jitter_get(&j, 200 * MS, &o), JITTER_PACKET);
		assert_int_equal(o.seq, 100 + i);
	}
	assert_int_equal(put(&j, 101, 201 * MS), -ETIME);
	assert_int_equal(j.stats.reordered, 1);
	assert_int_equal(j.stats.duplicates, 1);
	assert_int_equal(j.stats.late, 1);
}

/* A missing packet is reported lost when its successor is due, with the
 * duration of one packet, then the successor plays. */
static void test_loss(void **state)
{
	struct jitter j;
	jitter_init(&j, 8000, 40 * MS);
	struct jitter_out o;
	assert_int_equal(put(&j, 100, 0), 0);
	assert_int_equal(put(&j, 103, 60 * MS), 0);   /* 101 and 102 never come */
	assert_int_equal(jitter_get(&j, 40 * MS, &o), JITTER_PACKET);
	assert_int_equal(jitter_get(&j, 60 * MS, &o), JITTER_NONE);   /* 101's time, but 103 is not due */
	assert_int_equal(jitter_get(&j, 100 * MS, &o), JITTER_LOST);
	assert_int_equal(o.seq, 101);
	assert_int_equal(o.duration, 160);
	assert_int_equal(jitter_get(&j, 100 * MS, &o), JITTER_LOST);
	assert_int_equal(o.seq, 102);
	assert_int_equal(o.duration, 160);
	assert_int_equal(jitter_get(&j, 100 * MS, &o), JITTER_PACKET);
	assert_int_equal(o.seq, 103);
	assert_int_equal(j.stats.lost, 2);
}

/* Sequence numbers wrap; a big jump or a new SSRC restarts the stream. */
static void test_wrap_and_restart(void **state)
{
	struct jitter j;
	jitter_init(&j, 8000, 40 * MS);
	struct jitter_out o;
	int64_t t = 0;
	for (uint16_t s = 65530; s != 6; s++, t += 20 * MS) {
		assert_int_equal(put(&j, s, t), 0);
		assert_int_equal(jitter_get(&j, t + 40 * MS, &o), JITTER_PACKET);
		assert_int_equal(o.seq, s);
	}
	assert_int_equal(put(&j, 30000, t), 0);
	assert_int_equal(j.stats.restarts, 1);
	assert_int_equal(jitter_get(&j, t + 40 * MS, &o), JITTER_PACKET);
	assert_int_equal(o.seq, 30000);
	uint8_t b[200];
	size_t n = packet(b, 5, 0, 0x55555555u);
	assert_int_equal(jitter_put(&j, b, n, t + 50 * MS), 0);
	assert_int_equal(j.stats.restarts, 2);
	assert_int_equal(jitter_get(&j, t + 90 * MS, &o), JITTER_PACKET);
	assert_int_equal(o.seq, 5);
	assert_int_equal(jitter_put(&j, b, 5, t), -EINVAL);
	assert_int_equal(j.stats.malformed, 1);
}

/* A sender whose clock runs 1 % slow: packets arrive later and later
 * relative to their RTP time. The anchor follows, so none is dropped as
 * late and the delay stays bounded. */
static void test_slow_sender_clock(void **state)
{
	struct jitter j;
	jitter_init(&j, 8000, 40 * MS);
	struct jitter_out o;
	int64_t max_delay = 0;
	int got = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t arrival = (int64_t)i * 20200;   /* 20.2 ms apart instead of 20 */
		assert_int_equal(put(&j, (uint16_t)(100 + i), arrival), 0);
		for (int64_t t = arrival; t < arrival + 20200; t += 1 * MS)
			while (jitter_get(&j, t, &o) == JITTER_PACKET) {
				got++;
				if (t - o.arrival_us > max_delay)
					max_delay = t - o.arrival_us;
			}
	}
	assert_int_equal(j.stats.late, 0);
	assert_int_equal(j.stats.lost, 0);
	assert_true(got >= 995);
	assert_true(max_delay <= 70 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtp_parse),
		cmocka_unit_test(test_in_order_timing),
		cmocka_unit_test(test_reorder_duplicates_late),
		cmocka_unit_test(test_loss),
		cmocka_unit_test(test_wrap_and_restart),
		cmocka_unit_test(test_slow_sender_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
