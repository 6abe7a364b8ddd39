/* test_rtcp.c — unit tests of the RTCP builders and checks (proto/rtcp.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "proto/rtcp.h"

#define NTP_UNIX_OFFSET 2208988800ULL

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned rd16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Length in bytes of the RTCP packet at p, from its length field. */
static size_t pkt_bytes(const uint8_t *p)
{
	return (rd16(p + 2) + 1) * 4;
}

/* Checks the SDES packet at p: one chunk with the SSRC and a CNAME item equal
 * to cname (at most 255 bytes of it), a terminating null octet, padded to 32
 * bits, length field consistent. Returns its size. */
static size_t check_sdes(const uint8_t *p, uint32_t ssrc, const char *cname)
{
	size_t cl = strlen(cname);
	if (cl > 255)
		cl = 255;
	assert_int_equal(p[0] >> 6, 2);                 /* version */
	assert_int_equal(p[0] & 0x20, 0);               /* no padding */
	assert_int_equal(p[0] & 0x1f, 1);               /* one chunk */
	assert_int_equal(p[1], RTCP_SDES);
	size_t n = pkt_bytes(p);
	assert_int_equal(n % 4, 0);
	/* header + SSRC + type + length + text + at least one null octet */
	assert_true(n >= 8 + 2 + cl + 1);
	/* ... and no more than three bytes of extra padding after that */
	assert_true(n <= 8 + 2 + cl + 1 + 3);
	assert_int_equal(rd32(p + 4), ssrc);
	assert_int_equal(p[8], 1);                      /* CNAME */
	assert_int_equal(p[9], cl);
	assert_memory_equal(p + 10, cname, cl);
	for (size_t i = 10 + cl; i < n; i++)
		assert_int_equal(p[i], 0);              /* end of list + padding */
	return n;
}

static void test_sr_layout(void **state)
{
	uint8_t buf[256];
	memset(buf, 0xaa, sizeof buf);
	const uint64_t ntp = 0xe1234567ULL << 32 | 0x89abcdefULL;
	int n = rtcp_build_sr(buf, sizeof buf, 0x11223344, ntp, 0xcafebabe, 1234, 567890, "rtspd@host");
	assert_int_equal(n, 28 + 24);

	/* SR: V=2, P=0, RC=0, PT=200, length 6 (7 words) */
	assert_int_equal(buf[0], 0x80);
	assert_int_equal(buf[1], RTCP_SR);
	assert_int_equal(rd16(buf + 2), 6);
	assert_int_equal(rd32(buf + 4), 0x11223344);
	assert_int_equal(rd32(buf + 8), 0xe1234567);
	assert_int_equal(rd32(buf + 12), 0x89abcdef);
	assert_int_equal(rd32(buf + 16), 0xcafebabe);
	assert_int_equal(rd32(buf + 20), 1234);
	assert_int_equal(rd32(buf + 24), 567890);

	size_t s = check_sdes(buf + 28, 0x11223344, "rtspd@host");
	assert_int_equal(28 + s, (size_t)n);
	/* nothing written past the returned length */
	for (size_t i = (size_t)n; i < sizeof buf; i++)
		assert_int_equal(buf[i], 0xaa);
	assert_true(rtcp_valid(buf, (size_t)n));
}

static void test_sdes_padding(void **state)
{
	char cname[64];
	for (size_t cl = 0; cl < sizeof cname; cl++) {
		memset(cname, 'a' + (int)(cl % 26), cl);
		cname[cl] = 0;
		uint8_t buf[256];
		memset(buf, 0xaa, sizeof buf);
		int n = rtcp_build_sr(buf, sizeof buf, 0xdeadbeef, 1, 2, 3, 4, cname);
		assert_true(n > 28);
		assert_int_equal(n % 4, 0);
		size_t s = check_sdes(buf + 28, 0xdeadbeef, cname);
		assert_int_equal(28 + s, (size_t)n);
		/* the smallest size that holds the item and a null octet */
		assert_int_equal(s, (8 + 2 + cl + 1 + 3) / 4 * 4);
		assert_true(rtcp_valid(buf, (size_t)n));
	}
}

static void test_sdes_long_cname(void **state)
{
	char cname[301];
	memset(cname, 'x', 300);
	cname[300] = 0;
	uint8_t buf[512];
	int n = rtcp_build_sr(buf, sizeof buf, 7, 0, 0, 0, 0, cname);
	assert_true(n > 0);
	size_t s = check_sdes(buf + 28, 7, cname);   /* truncated to 255 */
	assert_int_equal(28 + s, (size_t)n);
	assert_int_equal(buf[28 + 9], 255);
	assert_true(rtcp_valid(buf, (size_t)n));
}

static void test_bye(void **state)
{
	uint8_t sr[256], buf[256];
	const uint64_t ntp = 0x0102030405060708ULL;
	int a = rtcp_build_sr(sr, sizeof sr, 0x55667788, ntp, 42, 10, 1000, "cam");
	assert_true(a > 0);
	memset(buf, 0xaa, sizeof buf);
	int n = rtcp_build_bye(buf, sizeof buf, 0x55667788, ntp, 42, 10, 1000, "cam");
	assert_int_equal(n, a + 8);
	/* SR + SDES identical to rtcp_build_sr's, then the BYE */
	assert_memory_equal(buf, sr, (size_t)a);
	const uint8_t *b = buf + a;
	assert_int_equal(b[0] >> 6, 2);
	assert_int_equal(b[0] & 0x20, 0);
	assert_int_equal(b[0] & 0x1f, 1);               /* one SSRC */
	assert_int_equal(b[1], RTCP_BYE);
	assert_int_equal(rd16(b + 2), 1);
	assert_int_equal(rd32(b + 4), 0x55667788);
	for (size_t i = (size_t)n; i < sizeof buf; i++)
		assert_int_equal(buf[i], 0xaa);

	/* walking the compound by the length fields lands exactly at the end */
	size_t off = 0;
	int types[4], k = 0;
	while (off < (size_t)n && k < 4) {
		types[k++] = buf[off + 1];
		off += pkt_bytes(buf + off);
	}
	assert_int_equal(off, (size_t)n);
	assert_int_equal(k, 3);
	assert_int_equal(types[0], RTCP_SR);
	assert_int_equal(types[1], RTCP_SDES);
	assert_int_equal(types[2], RTCP_BYE);
	assert_true(rtcp_valid(buf, (size_t)n));
}

static void test_enospc(void **state)
{
	uint8_t buf[256];
	const char *cname = "streaming-server.example";
	int full = rtcp_build_sr(buf, sizeof buf, 1, 2, 3, 4, 5, cname);
	assert_true(full > 28);
	for (size_t cap = 0; cap < (size_t)full; cap++) {
		memset(buf, 0xaa, sizeof buf);
		assert_int_equal(rtcp_build_sr(buf, cap, 1, 2, 3, 4, 5, cname), -ENOSPC);
		/* never a byte beyond the capacity */
		for (size_t i = cap; i < sizeof buf; i++)
			assert_int_equal(buf[i], 0xaa);
	}
	assert_int_equal(rtcp_build_sr(buf, (size_t)full, 1, 2, 3, 4, 5, cname), full);

	int bye = rtcp_build_bye(buf, sizeof buf, 1, 2, 3, 4, 5, cname);
	assert_int_equal(bye, full + 8);
	for (size_t cap = 0; cap < (size_t)bye; cap++) {
		memset(buf, 0xaa, sizeof buf);
		assert_int_equal(rtcp_build_bye(buf, cap, 1, 2, 3, 4, 5, cname), -ENOSPC);
		for (size_t i = cap; i < sizeof buf; i++)
			assert_int_equal(buf[i], 0xaa);
	}
	assert_int_equal(rtcp_build_bye(buf, (size_t)bye, 1, 2, 3, 4, 5, cname), bye);
}

static void test_valid_accepts(void **state)
{
	uint8_t buf[256];
	int n = rtcp_build_sr(buf, sizeof buf, 9, 8, 7, 6, 5, "c");
	assert_true(rtcp_valid(buf, (size_t)n));
	n = rtcp_build_bye(buf, sizeof buf, 9, 8, 7, 6, 5, "c");
	assert_true(rtcp_valid(buf, (size_t)n));

	/* A receiver's RR without report blocks, then its SDES */
	uint8_t rr[] = {
		0x80, RTCP_RR, 0, 1, 0xde, 0xad, 0xbe, 0xef,
		0x81, RTCP_SDES, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 1, 'x', 0,
	};
	assert_true(rtcp_valid(rr, sizeof rr));
	/* the RR alone */
	assert_true(rtcp_valid(rr, 8));

	/* RR with one report block (RC=1, 8 words) */
	uint8_t rr1[32] = { 0x81, RTCP_RR, 0, 7, 1, 2, 3, 4 };
	for (int i = 8; i < 32; i++)
		rr1[i] = (uint8_t)i;
	assert_true(rtcp_valid(rr1, sizeof rr1));
}

static void test_valid_rejects(void **state)
{
	uint8_t good[256];
	int n = rtcp_build_bye(good, sizeof good, 9, 8, 7, 6, 5, "cname");
	assert_true(n > 0);
	uint8_t b[256];

	/* too short to be anything */
	assert_false(rtcp_valid(good, 0));
	assert_false(rtcp_valid(good, 4));

	/* wrong version in the first packet */
	for (int v = 0; v < 4; v++) {
		if (v == 2)
			continue;
		memcpy(b, good, (size_t)n);
		b[0] = (uint8_t)((b[0] & 0x3f) | v << 6);
		assert_false(rtcp_valid(b, (size_t)n));
	}
	/* wrong version in a later packet (the SDES) */
	memcpy(b, good, (size_t)n);
	b[28] = (uint8_t)((b[28] & 0x3f) | 1 << 6);
	assert_false(rtcp_valid(b, (size_t)n));

	/* first packet neither SR nor RR */
	static const uint8_t others[] = { RTCP_SDES, RTCP_BYE, 204, 205, 206, 0, 96, 199 };
	for (size_t i = 0; i < sizeof others; i++) {
		memcpy(b, good, (size_t)n);
		b[1] = others[i];
		assert_false(rtcp_valid(b, (size_t)n));
	}
	/* an SDES compound on its own */
	assert_false(rtcp_valid(good + 28, (size_t)n - 28));

	/* a length field pointing past the end */
	memcpy(b, good, (size_t)n);
	b[3] = 200;
	assert_false(rtcp_valid(b, (size_t)n));
	memcpy(b, good, (size_t)n);
	b[28 + 3]++;                                    /* SDES one word too long */
	assert_false(rtcp_valid(b, (size_t)n));
	/* a length field too short: the next "packet" starts inside the SR */
	memcpy(b, good, (size_t)n);
	b[3] = 5;
	assert_false(rtcp_valid(b, (size_t)n));

	/* the buffer cut short, or with trailing bytes */
	for (size_t cut = 1; cut < 4; cut++)
		assert_false(rtcp_valid(good, (size_t)n - cut));
	assert_false(rtcp_valid(good, (size_t)n - 4));
	memcpy(b, good, (size_t)n);
	memset(b + n, 0, 8);
	for (size_t extra = 1; extra < 4; extra++)
		assert_false(rtcp_valid(b, (size_t)n + extra));
}

static void test_ntp_now(void **state)
{
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	uint64_t ntp = rtcp_ntp_now();
	clock_gettime(CLOCK_REALTIME, &after);

	uint64_t sec = ntp >> 32;
	uint32_t frac = (uint32_t)ntp;
	/* seconds since 1900: 2208988800 more than the Unix time */
	assert_true(sec >= (uint64_t)before.tv_sec + NTP_UNIX_OFFSET);
	assert_true(sec <= (uint64_t)after.tv_sec + NTP_UNIX_OFFSET);
	/* in this century (2000-01-01 is 3155673600 in NTP seconds) */
	assert_true(sec > 3155673600ULL);

	/* as microseconds since the Unix epoch, between the two readings */
	double t = (double)(sec - NTP_UNIX_OFFSET) + frac / 4294967296.0;
	double t0 = (double)before.tv_sec + before.tv_nsec / 1e9;
	double t1 = (double)after.tv_sec + after.tv_nsec / 1e9;
	assert_true(t >= t0 - 1e-6);
	assert_true(t <= t1 + 1e-6);

	/* the fraction is a binary fraction of a second, not microseconds */
	uint64_t a = rtcp_ntp_now();
	struct timespec sl = { 0, 20 * 1000 * 1000 };
	nanosleep(&sl, NULL);
	uint64_t c = rtcp_ntp_now();
	double d = (double)(c - a) / 4294967296.0;
	assert_true(d >= 0.019);
	assert_true(d < 1.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sr_layout),
		cmocka_unit_test(test_sdes_padding),
		cmocka_unit_test(test_sdes_long_cname),
		cmocka_unit_test(test_bye),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_valid_accepts),
		cmocka_unit_test(test_valid_rejects),
		cmocka_unit_test(test_ntp_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
