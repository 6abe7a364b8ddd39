/* decode.h — the back channel's decoders: an RTP payload of one of the
 * formats in proto/backchannel.h in, decoded audio frames out (FFmpeg).
 *
 * Depacketizing is done here too, since it is small per format: G.711,
 * G.722, G.726 (RFC 3551 packing, FFmpeg's g726le) and Opus carry one
 * codec packet per RTP payload; mpeg4-generic carries AU headers
 * (RFC 3640 AAC-hbr: 16-bit AU-headers-length, 13-bit size + 3-bit index
 * per AU) followed by the AUs. A struct talk_decoder owns its FFmpeg
 * context, packet and frame.
 */
#ifndef RTSPD_TALK_DECODE_H
#define RTSPD_TALK_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/backchannel.h"

struct AVCodecContext;
struct AVPacket;
struct AVFrame;

struct talk_decoder {
	struct bc_format fmt;
	struct AVCodecContext *ctx;
	struct AVPacket *pkt;
	struct AVFrame *frame;
};

/* Whether this build's FFmpeg can decode the format named (an rtpmap
 * encoding name); the signature fits bc_formats(). */
bool talk_decoder_available(const char *name, void *arg);

int talk_decoder_open(struct talk_decoder *d, const struct bc_format *f);
void talk_decoder_close(struct talk_decoder *d);

/* Decodes one RTP payload; emit() gets every frame it yields. Returns 0,
 * -EINVAL for a payload that does not parse, or FFmpeg's error. */
int talk_decode(struct talk_decoder *d, const uint8_t *payload, size_t len,
		void (*emit)(const struct AVFrame *frame, void *arg), void *arg);

#endif
