/* base64.h — a streaming base64 decoder for the RTSP-over-HTTP tunnel's
 * client-to-server channel (the POST body).
 *
 * Clients are sloppy in ways a strict decoder fails on, so this one:
 *  - keeps a partial 4-character group across calls (a TCP read can end
 *    anywhere);
 *  - skips SP, TAB, CR and LF anywhere;
 *  - accepts '=' padding in the middle of the stream: each message may be
 *    encoded on its own with its own padding (ffmpeg does), so a padded
 *    group ends one blob and decoding restarts with the next;
 *  - stops, without consuming it, at a '$' that begins a group: some
 *    clients send interleaved frames raw rather than encoded (base64 never
 *    contains '$'), and the caller takes the raw frame itself.
 * Pure functions, no allocation; the state is a small struct the caller owns.
 */
#ifndef RTSPD_BASE64_H
#define RTSPD_BASE64_H

#include <stddef.h>
#include <stdint.h>

struct b64_stream {
	uint8_t q[4];   /* sextets of the group being read */
	int n;          /* how many of them */
	int pad;        /* '=' seen in this group */
};

/* Decodes from in[0..inlen) into out (room for outcap bytes; 3 bytes per 4
 * characters, so outcap >= inlen * 3 / 4 + 3 always suffices). Returns the
 * bytes written; *consumed says how much input was used (all of it, unless
 * the output is full or decoding stopped at a raw '$' or an error).
 * *status: 0 ok, 1 stopped at a '$' at in[*consumed] (on a group
 * boundary), -EINVAL a character that is not base64. */
size_t b64_stream_decode(struct b64_stream *st, const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
			 size_t *consumed, int *status);

/* Standard base64 with padding into out (room for 4 * ((len + 2) / 3) + 1);
 * returns the length written (NUL-terminated). */
size_t b64_encode(const uint8_t *in, size_t len, char *out);

#endif
