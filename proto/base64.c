/* base64.c — see base64.h. */
#include "proto/base64.h"

#include <errno.h>

static int sextet(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')   /* '-' and '_': the URL-safe alphabet, seen in the wild */
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Writes what a group of n sextets (2..4) holds. */
static size_t flush_group(const uint8_t *q, int n, uint8_t *out)
{
	uint32_t v = (uint32_t)q[0] << 18 | (uint32_t)q[1] << 12 | (uint32_t)(n > 2 ? q[2] : 0) << 6 |
		     (uint32_t)(n > 3 ? q[3] : 0);
	out[0] = (uint8_t)(v >> 16);
	if (n > 2)
		out[1] = (uint8_t)(v >> 8);
	if (n > 3)
		out[2] = (uint8_t)v;
	return (size_t)(n - 1);
}

size_t b64_stream_decode(struct b64_stream *st, const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
			 size_t *consumed, int *status)
{
	size_t o = 0, i = 0;
	*status = 0;
	for (; i < inlen; i++) {
		uint8_t c = in[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			/* Padding ends the group: "xx==" or "xxx=". One or two '='
			 * after 2 or 3 characters; a stray one is an error. */
			if (st->n < 2 || st->n + st->pad >= 4) {
				*status = -EINVAL;
				break;
			}
			st->pad++;
			if (st->n + st->pad == 4) {
				if (outcap - o < 3)
					break;
				o += flush_group(st->q, st->n, out + o);
				st->n = st->pad = 0;
			}
			continue;
		}
		if (st->pad) {
			/* "xx=" then a character: the second '=' is missing. Take
			 * the group as complete and go on with a new one. */
			if (outcap - o < 3)
				break;
			o += flush_group(st->q, st->n, out + o);
			st->n = st->pad = 0;
		}
		if (c == '$' && st->n == 0) {
			*status = 1;
			break;
		}
		int v = sextet(c);
		if (v < 0) {
			*status = -EINVAL;
			break;
		}
		if (st->n == 3 && outcap - o < 3)
			break;
		st->q[st->n++] = (uint8_t)v;
		if (st->n == 4) {
			o += flush_group(st->q, 4, out + o);
			st->n = 0;
		}
	}
	*consumed = i;
	return o;
}

size_t b64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
	return o;
}
