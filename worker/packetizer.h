/* packetizer.h — turns one track's compressed packets into RTP packets,
 * using libavformat's RTP muxer (RFC 6184 H.264 FU-A/STAP-A, RFC 7798 H.265
 * FU/AP, RFC 3640 AAC, RFC 2435 JPEG, RFC 6416 MPEG-4, RFC 7587 Opus,
 * G.711/G.722/G.726 ...), and describes the track in SDP (av_sdp_create).
 *
 * The muxer writes into a custom AVIOContext whose buffer is exactly one
 * packet; every RTP packet it emits is handed to the callback, once, in
 * order. Where FFmpeg 5.1 gets a header field wrong (STAP-A NRI, H.265
 * FU/AP LayerId and TID) the packet is mended on its way out; AAC is
 * packetized here (RFC 3640 AAC-hbr) so no frame waits for the next. The packetizer owns its muxer; the callback's data is valid only
 * during the call.
 */
#ifndef RTSPD_PACKETIZER_H
#define RTSPD_PACKETIZER_H

#include <stdbool.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#define RTP_MTU 1400

struct packetizer;

/* Called once per RTP packet. key: the packet is the first of a key frame. */
typedef void (*packetizer_fn)(void *arg, const uint8_t *rtp, size_t len, bool key);

/* par: the track's codec parameters; tb: time base of the packets given to
 * packetizer_write; payload_type: <0 lets FFmpeg pick (static PT for G.711
 * and friends; 96 for video and 97 for audio otherwise). Returns 0 or a negative AVERROR. */
int packetizer_open(struct packetizer **out, const AVCodecParameters *par, AVRational tb,
		    int payload_type, uint32_t ssrc, packetizer_fn fn, void *arg,
		    char *err, size_t errlen);
void packetizer_close(struct packetizer **p);

/* Packetizes one access unit; pkt is not consumed (caller unrefs). */
int packetizer_write(struct packetizer *p, const AVPacket *pkt);
/* Emits anything held back (nothing today: every packet goes out at once). */
void packetizer_flush(struct packetizer *p);

uint32_t packetizer_clock_rate(const struct packetizer *p);
int packetizer_payload_type(const struct packetizer *p);

/* The "m=" section for this track (m= line, rtpmap, fmtp ...) without any
 * a=control line; CRLF line ends. Returns length or -ENOSPC. */
int packetizer_sdp(const struct packetizer *p, char *buf, size_t len);

#endif
