/* srtp.c — see srtp.h. */
#include "worker/srtp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include "proto/base64.h"

_Static_assert(SRTP_TX_SPARE >= SRTP_MAX_TRAILER_LEN + 4, "SRTCP needs the trailer and the E|index word");

#define SRTCP_MAX 1500

struct srtp_tx {
	srtp_t out;          /* ssrc_any_outbound: our RTP and RTCP */
	srtp_t in;           /* ssrc_any_inbound: SRTCP from the client (libsrtp
	                      * allows one wildcard direction per srtp_t) */
};

static int srtp_once(void)
{
	static bool done;
	if (done)
		return 0;
	if (srtp_init() != srtp_err_status_ok)
		return -EIO;
	done = true;
	return 0;
}

int srtp_key_generate(uint8_t key[SRTP_KEY_LEN])
{
	return RAND_bytes(key, SRTP_KEY_LEN) == 1 ? 0 : -EIO;
}

int srtp_sdes_attr(const uint8_t key[SRTP_KEY_LEN], char *buf, size_t cap)
{
	char b64[4 * ((SRTP_KEY_LEN + 2) / 3) + 1];
	b64_encode(key, SRTP_KEY_LEN, b64);
	int n = snprintf(buf, cap, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s", b64);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

static int make_ctx(srtp_t *ctx, const uint8_t key[SRTP_KEY_LEN], srtp_ssrc_type_t dir)
{
	uint8_t k[SRTP_KEY_LEN];
	memcpy(k, key, sizeof k);     /* libsrtp wants a non-const key */
	srtp_policy_t p;
	memset(&p, 0, sizeof p);
	srtp_crypto_policy_set_rtp_default(&p.rtp);    /* AES_CM_128_HMAC_SHA1_80 */
	srtp_crypto_policy_set_rtcp_default(&p.rtcp);
	p.ssrc.type = dir;
	p.key = k;
	/* A batch that could not be written is protected again when it is
	 * retried: the same packet, so the same bytes, which is safe; without
	 * this libsrtp refuses the repeated index. */
	p.allow_repeat_tx = 1;
	p.window_size = 128;
	p.next = NULL;
	srtp_err_status_t e = srtp_create(ctx, &p);
	memset(k, 0, sizeof k);
	return e == srtp_err_status_ok ? 0 : e == srtp_err_status_alloc_fail ? -ENOMEM : -EIO;
}

int srtp_tx_create(struct srtp_tx **out, const uint8_t key[SRTP_KEY_LEN])
{
	*out = NULL;
	int r = srtp_once();
	if (r)
		return r;
	struct srtp_tx *tx = calloc(1, sizeof *tx);
	if (!tx)
		return -ENOMEM;
	if ((r = make_ctx(&tx->out, key, ssrc_any_outbound)) < 0) {
		free(tx);
		return r;
	}
	if ((r = make_ctx(&tx->in, key, ssrc_any_inbound)) < 0) {
		srtp_dealloc(tx->out);
		free(tx);
		return r;
	}
	*out = tx;
	return 0;
}

void srtp_tx_free(struct srtp_tx **tx)
{
	if (!*tx)
		return;
	srtp_dealloc((*tx)->out);
	srtp_dealloc((*tx)->in);
	free(*tx);
	*tx = NULL;
}

int srtp_tx_rtp(struct srtp_tx *tx, uint8_t *pkt, size_t *len)
{
	if (*len < 12 || *len > 65535 - SRTP_TX_SPARE)
		return -EINVAL;
	int n = (int)*len;
	if (srtp_protect(tx->out, pkt, &n) != srtp_err_status_ok)
		return -EINVAL;
	*len = (size_t)n;
	return 0;
}

int srtp_tx_rtcp(struct srtp_tx *tx, uint8_t *pkt, size_t *len)
{
	if (*len < 8 || *len > 65535 - SRTP_TX_SPARE)
		return -EINVAL;
	int n = (int)*len;
	if (srtp_protect_rtcp(tx->out, pkt, &n) != srtp_err_status_ok)
		return -EINVAL;
	*len = (size_t)n;
	return 0;
}

int srtp_rx_rtp(struct srtp_tx *tx, uint8_t *pkt, size_t *len)
{
	if (*len < 12 + SRTP_RTP_TAG_LEN || *len > 65535)
		return -EINVAL;
	int n = (int)*len;
	if (srtp_unprotect(tx->in, pkt, &n) != srtp_err_status_ok)
		return -EINVAL;
	*len = (size_t)n;
	return 0;
}

int srtp_tx_check_rtcp(struct srtp_tx *tx, const uint8_t *buf, size_t len)
{
	/* Header, sender SSRC, E|index and the 10-byte tag at least. */
	if (len < 8 + 4 + SRTP_RTP_TAG_LEN || len > SRTCP_MAX)
		return -EINVAL;
	uint8_t copy[SRTCP_MAX] __attribute__((aligned(4)));
	memcpy(copy, buf, len);
	int n = (int)len;
	return srtp_unprotect_rtcp(tx->in, copy, &n) == srtp_err_status_ok ? 0 : -EINVAL;
}
