/* backchannel.h — the ONVIF audio back channel's formats: which RTP
 * payload types the server accepts from a talker, how they are named in
 * the SDP, and how the config's codec names map onto them.
 *
 * One table, shared by the worker (the SDP's sendonly section, the SETUP)
 * and the talk process (which decoder a payload type selects). The
 * payload type the client sends selects the format (ONVIF Streaming
 * Specification, back channel). Pure functions; no FFmpeg here (the talk
 * process maps names onto decoders, and leaves out what FFmpeg lacks).
 */
#ifndef RTSPD_BACKCHANNEL_H
#define RTSPD_BACKCHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_MAX_FORMATS 12
#define BC_TAG "www.onvif.org/ver20/backchannel"

struct bc_format {
	uint8_t pt;              /* RTP payload type */
	char name[24];           /* encoding name in a=rtpmap: PCMU, G726-32, mpeg4-generic ... */
	uint32_t clock_rate;     /* RTP clock (8000 for G.722, sampled at 16000: RFC 3551) */
	uint8_t channels;
	uint32_t sample_rate;    /* what the decoder produces */
	char fmtp[160];          /* a=fmtp parameters, "" for none */
	uint8_t aac_config[8];   /* mpeg4-generic: AudioSpecificConfig */
	uint8_t aac_config_len;
	uint8_t g726_bits;       /* G726-N: N/8 bits per sample */
};

/* Every format the server may offer, the preferred one first: the
 * config's codec (G711U G711A G722 G726 AAC OPUS; "" = PCMU) with its
 * sample rate / channels / bit rate where they apply, then every other.
 * available(name) (may be NULL) leaves out formats without a decoder.
 * Returns how many were written to out (at most BC_MAX_FORMATS). */
int bc_formats(const char *codec, int samplerate, int channels, int bitrate,
	       bool (*available)(const char *name, void *arg), void *arg, struct bc_format *out);

/* The SDP media section for these formats (CRLF lines, no a=control):
 * "m=audio 0 RTP/AVP pt...", one a=rtpmap (and a=fmtp) each, a=sendonly.
 * Returns the length or -ENOSPC. */
int bc_sdp_section(char *buf, size_t cap, const struct bc_format *f, int n);

/* The format with payload type pt, or NULL. */
const struct bc_format *bc_find(const struct bc_format *f, int n, uint8_t pt);

#endif
