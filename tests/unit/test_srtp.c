/* test_srtp.c — unit tests of the playback SRTP module (worker/srtp.c):
 * the published AES_CM_128_HMAC_SHA1_80 vector, protect/unprotect round
 * trips for RTP and RTCP, repeated sends, the SDES attribute, fresh keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <srtp2/srtp.h>

#include "proto/base64.h"
#include "worker/srtp.h"

/* The AES_CM_128_HMAC_SHA1_80 test vector libSRTP and other SRTP
 * implementations validate against (SSRC 0xcafebabe, seq 0x1234, ROC 0). */
static const uint8_t vec_key[SRTP_KEY_LEN] = {
	0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
	0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
};
static const uint8_t vec_plain[28] = {
	0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
};
static const uint8_t vec_cipher[38] = {
	0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c,
	0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc,
	0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
};

static void test_spec_vector(void **state)
{
	(void)state;
	struct srtp_tx *tx;
	assert_int_equal(srtp_tx_create(&tx, vec_key), 0);
	uint8_t buf[sizeof vec_plain + SRTP_TX_SPARE] __attribute__((aligned(4)));
	memcpy(buf, vec_plain, sizeof vec_plain);
	size_t len = sizeof vec_plain;
	assert_int_equal(srtp_tx_rtp(tx, buf, &len), 0);
	assert_int_equal(len, sizeof vec_cipher);
	assert_memory_equal(buf, vec_cipher, sizeof vec_cipher);
	srtp_tx_free(&tx);
	assert_null(tx);
}

/* A receiver the way a client sets one up from the SDP key. */
static srtp_t receiver(const uint8_t key[SRTP_KEY_LEN])
{
	uint8_t k[SRTP_KEY_LEN];
	memcpy(k, key, sizeof k);
	srtp_policy_t p;
	memset(&p, 0, sizeof p);
	srtp_crypto_policy_set_rtp_default(&p.rtp);
	srtp_crypto_policy_set_rtcp_default(&p.rtcp);
	p.ssrc.type = ssrc_any_inbound;
	p.key = k;
	p.window_size = 128;
	srtp_t s = NULL;
	assert_int_equal(srtp_create(&s, &p), srtp_err_status_ok);
	return s;
}

static size_t make_rtp(uint8_t *buf, uint16_t seq, size_t payload)
{
	buf[0] = 0x80;
	buf[1] = 96;
	buf[2] = (uint8_t)(seq >> 8);
	buf[3] = (uint8_t)seq;
	memcpy(buf + 4, "\x00\x01\x02\x03\x12\x34\x56\x78", 8);
	for (size_t i = 0; i < payload; i++)
		buf[12 + i] = (uint8_t)(i * 7 + 1);
	return 12 + payload;
}

static void test_rtp_round_trip(void **state)
{
	(void)state;
	uint8_t key[SRTP_KEY_LEN];
	assert_int_equal(srtp_key_generate(key), 0);
	struct srtp_tx *tx;
	assert_int_equal(srtp_tx_create(&tx, key), 0);
	srtp_t rx = receiver(key);
	/* Across a sequence number wrap, so the rollover counter moves too. */
	for (unsigned i = 0; i < 40; i++) {
		uint16_t seq = (uint16_t)(65520 + i);
		uint8_t plain[1400], buf[1400 + SRTP_TX_SPARE] __attribute__((aligned(4)));
		size_t n = make_rtp(plain, seq, 1000 + i);
		memcpy(buf, plain, n);
		size_t len = n;
		assert_int_equal(srtp_tx_rtp(tx, buf, &len), 0);
		assert_int_equal(len, n + SRTP_RTP_TAG_LEN);
		assert_memory_equal(buf, plain, 12);                         /* header in the clear */
		assert_memory_not_equal(buf + 12, plain + 12, n - 12);       /* payload not */
		int ilen = (int)len;
		assert_int_equal(srtp_unprotect(rx, buf, &ilen), srtp_err_status_ok);
		assert_int_equal(ilen, (int)n);
		assert_memory_equal(buf, plain, n);
	}
	srtp_dealloc(rx);
	srtp_tx_free(&tx);
}

/* A batch that did not go out is protected again: same bytes, no refusal. */
static void test_repeat(void **state)
{
	(void)state;
	struct srtp_tx *tx;
	assert_int_equal(srtp_tx_create(&tx, vec_key), 0);
	uint8_t a[64 + SRTP_TX_SPARE], b[64 + SRTP_TX_SPARE];
	size_t la = make_rtp(a, 5, 40), lb;
	memcpy(b, a, la);
	lb = la;
	assert_int_equal(srtp_tx_rtp(tx, a, &la), 0);
	assert_int_equal(srtp_tx_rtp(tx, b, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	uint8_t junk[8 + SRTP_TX_SPARE] = { 0 };
	size_t lj = 8;
	assert_int_equal(srtp_tx_rtp(tx, junk, &lj), -EINVAL);     /* shorter than an RTP header */
	srtp_tx_free(&tx);
}

static void test_rtcp(void **state)
{
	(void)state;
	uint8_t key[SRTP_KEY_LEN];
	assert_int_equal(srtp_key_generate(key), 0);
	struct srtp_tx *tx, *peer;
	assert_int_equal(srtp_tx_create(&tx, key), 0);
	assert_int_equal(srtp_tx_create(&peer, key), 0);
	/* An SR: header, SSRC, NTP, RTP time, counts. */
	uint8_t sr[28 + SRTP_TX_SPARE] = { 0x80, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t plain[28];
	memcpy(plain, sr, sizeof plain);
	size_t len = 28;
	assert_int_equal(srtp_tx_rtcp(tx, sr, &len), 0);
	assert_int_equal(len, 28 + 4 + SRTP_RTP_TAG_LEN);
	assert_memory_equal(sr, plain, 8);
	assert_memory_not_equal(sr + 8, plain + 8, 20);
	assert_int_equal(sr[28] & 0x80, 0x80);                     /* E: encrypted */
	/* What one side protects, the other side's check accepts ... */
	assert_int_equal(srtp_tx_check_rtcp(peer, sr, len), 0);
	/* ... and a changed byte, a plain RR or a runt it does not. */
	uint8_t bad[64];
	memcpy(bad, sr, len);
	bad[10] ^= 1;
	assert_int_equal(srtp_tx_check_rtcp(peer, bad, len), -EINVAL);
	const uint8_t rr[8] = { 0x80, 201, 0, 1, 0, 0, 0, 1 };
	assert_int_equal(srtp_tx_check_rtcp(peer, rr, sizeof rr), -EINVAL);
	srtp_tx_free(&tx);
	srtp_tx_free(&peer);
}

static void test_sdes_attr(void **state)
{
	(void)state;
	char a[SRTP_SDES_ATTR_MAX];
	int n = srtp_sdes_attr(vec_key, a, sizeof a);
	const char *prefix = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:";
	assert_int_equal(n, (int)strlen(prefix) + 40);
	assert_int_equal(strlen(a), (size_t)n);
	assert_memory_equal(a, prefix, strlen(prefix));
	assert_null(strchr(a, '|'));                               /* no lifetime or MKI */
	struct b64_stream st = { 0 };
	uint8_t out[64];
	size_t used;
	int status;
	size_t got = b64_stream_decode(&st, (const uint8_t *)a + strlen(prefix), 40, out, sizeof out,
				       &used, &status);
	assert_int_equal(status, 0);
	assert_int_equal(got, SRTP_KEY_LEN);
	assert_memory_equal(out, vec_key, SRTP_KEY_LEN);
	assert_int_equal(srtp_sdes_attr(vec_key, a, (size_t)n), -ENOSPC);
}

static void test_fresh_keys(void **state)
{
	(void)state;
	uint8_t k1[SRTP_KEY_LEN], k2[SRTP_KEY_LEN];
	assert_int_equal(srtp_key_generate(k1), 0);
	assert_int_equal(srtp_key_generate(k2), 0);
	assert_memory_not_equal(k1, k2, SRTP_KEY_LEN);
	char a1[SRTP_SDES_ATTR_MAX], a2[SRTP_SDES_ATTR_MAX];
	assert_true(srtp_sdes_attr(k1, a1, sizeof a1) > 0);
	assert_true(srtp_sdes_attr(k2, a2, sizeof a2) > 0);
	assert_string_not_equal(a1, a2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_vector),
		cmocka_unit_test(test_rtp_round_trip),
		cmocka_unit_test(test_repeat),
		cmocka_unit_test(test_rtcp),
		cmocka_unit_test(test_sdes_attr),
		cmocka_unit_test(test_fresh_keys),
	};
	return cmocka_run_group_tests_name("srtp", tests, NULL, NULL);
}
