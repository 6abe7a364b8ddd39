/* ws.c — see ws.h. */
#include "proto/ws.h"

#include <errno.h>
#include <openssl/sha.h>
#include <string.h>

#include "proto/base64.h"

long ws_parse_frame(const uint8_t *buf, size_t len, struct ws_frame *f)
{
	if (len < 2)
		return 0;
	f->fin = buf[0] & 0x80;
	f->opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return -EPROTO;   /* no extension was negotiated */
	switch (f->opcode) {
	case WS_CONTINUATION: case WS_TEXT: case WS_BINARY:
	case WS_CLOSE: case WS_PING: case WS_PONG:
		break;
	default:
		return -EPROTO;
	}
	f->masked = buf[1] & 0x80;
	uint64_t plen = buf[1] & 0x7f;
	size_t h = 2;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		h = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		h = 10;
	}
	if (f->opcode >= WS_CLOSE && (!f->fin || plen > 125))
		return -EPROTO;
	if (plen > WS_MAX_CLIENT_PAYLOAD)
		return -EMSGSIZE;
	if (f->masked) {
		if (len < h + 4)
			return 0;
		memcpy(f->mask, buf + h, 4);
		h += 4;
	} else {
		memset(f->mask, 0, 4);
	}
	f->len = plen;
	f->header_len = h;
	if (len < h + plen)
		return 0;
	return (long)(h + plen);
}

void ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
	for (size_t i = 0; i < len; i++)
		p[i] ^= mask[(offset + i) & 3];
}

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], uint8_t opcode, uint64_t payload_len)
{
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

int ws_accept_key(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	size_t kl = strlen(key);
	/* The key is the base64 of 16 random bytes: 24 characters. */
	if (kl != 24)
		return -EINVAL;
	struct b64_stream st = { 0 };
	uint8_t raw[24];
	size_t used;
	int status;
	size_t n = b64_stream_decode(&st, (const uint8_t *)key, kl, raw, sizeof raw, &used, &status);
	if (status != 0 || used != kl || n != 16 || st.n != 0)
		return -EINVAL;
	char buf[24 + sizeof guid];
	memcpy(buf, key, kl);
	memcpy(buf + kl, guid, sizeof guid);
	uint8_t digest[SHA_DIGEST_LENGTH];
	SHA1((const uint8_t *)buf, kl + sizeof guid - 1, digest);
	b64_encode(digest, sizeof digest, out);
	return 0;
}

/* State: bits 0-7 continuation bytes still due, bits 8-15 and 16-23 the
 * range the next one must fall in (narrower than 80..BF right after some
 * lead bytes, which is what rules out overlong forms and surrogates). */
int ws_utf8_feed(uint32_t *state, const uint8_t *p, size_t n)
{
	uint32_t due = *state & 0xff, lo = (*state >> 8) & 0xff, hi = (*state >> 16) & 0xff;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if (due) {
			if (b < lo || b > hi)
				return -EILSEQ;
			due--;
			lo = 0x80;
			hi = 0xbf;
			continue;
		}
		if (b < 0x80)
			continue;
		lo = 0x80;
		hi = 0xbf;
		if (b >= 0xc2 && b <= 0xdf) {
			due = 1;
		} else if (b >= 0xe0 && b <= 0xef) {
			due = 2;
			if (b == 0xe0)
				lo = 0xa0;          /* no overlong 3-byte forms */
			else if (b == 0xed)
				hi = 0x9f;          /* no surrogates */
		} else if (b >= 0xf0 && b <= 0xf4) {
			due = 3;
			if (b == 0xf0)
				lo = 0x90;          /* no overlong 4-byte forms */
			else if (b == 0xf4)
				hi = 0x8f;          /* nothing above U+10FFFF */
		} else {
			return -EILSEQ;             /* C0, C1, F5..FF, a stray continuation */
		}
	}
	*state = due ? due | lo << 8 | hi << 16 : 0;
	return 0;
}
