/* srtp.h — SRTP for playback (RFC 3711 through libsrtp2) with keys given
 * by SDES (RFC 4568) in the DESCRIBE's SDP: the key material of one track
 * of one session, its "a=crypto" attribute, and the sending context that
 * protects the track's RTP and RTCP.
 *
 * Only AES_CM_128_HMAC_SHA1_80 is offered: the one suite every SDES client
 * knows, and with ffmpeg's parser the attribute must carry exactly the 30
 * key bytes (no "|lifetime|MKI": ffmpeg refuses them).
 *
 * Ownership: a key is 30 bytes the caller holds (a connection between its
 * DESCRIBE and the SETUP that creates the session, then the session). A
 * struct srtp_tx belongs to one session track; srtp_tx_free() releases it.
 * libsrtp's global state is initialised on first use, once per process.
 */
#ifndef RTSPD_SRTP_H
#define RTSPD_SRTP_H

#include <stddef.h>
#include <stdint.h>

#define SRTP_KEY_LEN      30    /* master key 16 + master salt 14 */
#define SRTP_SDES_ATTR_MAX 96   /* "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + 40 + NUL */
#define SRTP_RTP_TAG_LEN  10    /* what srtp_tx_rtp adds to every packet */
#define SRTP_TX_SPARE     160   /* room libsrtp may write after a packet (SRTP_MAX_TRAILER_LEN + 4, rounded up) */

struct srtp_tx;

/* 30 fresh random bytes (OpenSSL's CSPRNG). Returns 0 or -EIO. */
int srtp_key_generate(uint8_t key[SRTP_KEY_LEN]);

/* "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<40 base64 chars>" (no CRLF)
 * into buf. Returns its length, or -ENOSPC. */
int srtp_sdes_attr(const uint8_t key[SRTP_KEY_LEN], char *buf, size_t cap);

/* A context sending with key (any SSRC), and checking SRTCP the client
 * sends with the same key. Returns 0, -ENOMEM or -EIO. */
int srtp_tx_create(struct srtp_tx **out, const uint8_t key[SRTP_KEY_LEN]);
void srtp_tx_free(struct srtp_tx **tx);

/* Protect in place: pkt holds *len bytes and has SRTP_TX_SPARE more room;
 * *len becomes the protected length. Sending the same packet again (a
 * write that did not go out is retried) gives the same bytes. Returns 0 or
 * -EINVAL (not RTP/RTCP, or libsrtp refused, e.g. an index far behind). */
int srtp_tx_rtp(struct srtp_tx *tx, uint8_t *pkt, size_t *len);
int srtp_tx_rtcp(struct srtp_tx *tx, uint8_t *pkt, size_t *len);

/* The client's SRTP under this context's key (the back channel's talker):
 * authenticated and decrypted in place; *len becomes the RTP length.
 * Returns 0 or -EINVAL (not authentic, replayed, malformed). */
int srtp_rx_rtp(struct srtp_tx *tx, uint8_t *pkt, size_t *len);

/* Is buf an authentic SRTCP packet under this context's key? (buf is not
 * changed.) Returns 0 or -EINVAL. */
int srtp_tx_check_rtcp(struct srtp_tx *tx, const uint8_t *buf, size_t len);

#endif
