/* testsrc.h — the built-in test pattern: libavfilter renders testsrc2
 * (moving pattern, 640x360, 25 fps) and a 1 kHz sine (44.1 kHz stereo), and
 * we encode them to H.264 (libx264, a key frame every second, no B-frames,
 * parameter sets before every key frame) and AAC-LC. The testsrc owns its
 * filter graph and encoders; the caller owns the packets it receives. */
#ifndef RTSPD_TESTSRC_H
#define RTSPD_TESTSRC_H

#include <libavcodec/avcodec.h>

#define TESTSRC_TRACKS 2   /* 0: video, 1: audio */

struct testsrc;

int testsrc_open(struct testsrc **out, char *err, size_t errlen);
void testsrc_close(struct testsrc **t);
const AVCodecParameters *testsrc_par(const struct testsrc *t, int track);
AVRational testsrc_time_base(const struct testsrc *t, int track);
/* Next encoded packet of either track (the one behind in time is fed
 * first), stream_index = track. Returns 0 or a negative AVERROR. */
int testsrc_read(struct testsrc *t, AVPacket *pkt);

#endif
