/* source.h — where a worker's media comes from: a file (any container
 * libavformat reads) or the built-in test pattern (lavfi testsrc2 + sine,
 * encoded to H.264 + AAC).
 *
 * A source yields compressed AVPackets on ONE continuous output timeline:
 * timestamps keep growing across loops and seeks, so RTP timestamps and
 * sequence numbers never jump back. The source owns its FFmpeg contexts; the
 * caller owns each packet it receives (av_packet_unref).
 */
#ifndef RTSPD_SOURCE_H
#define RTSPD_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

#define SOURCE_MAX_TRACKS 2     /* first video + first audio stream */

struct source;

struct source_track {
	const AVCodecParameters *par;   /* what the packets hold (owned by the source) */
	AVRational time_base;           /* of the packets' pts/dts */
	enum AVMediaType type;
};

/* kind: SOURCE_FILE (path) or SOURCE_TEST. loop_nums: -1 forever, else
 * times to play (files only). Returns 0 or a negative AVERROR; err gets a
 * one-line reason. */
int source_open(struct source **out, int kind, const char *path, int loop_nums,
		char *err, size_t errlen);
void source_close(struct source **s);

int source_ntracks(const struct source *s);
const struct source_track *source_track(const struct source *s, int i);
bool source_is_live(const struct source *s);      /* test pattern: no seeking, no end */
int64_t source_duration_us(const struct source *s);  /* one pass, 0 when unknown */

/* Next packet, stream_index = track number, timestamps on the output
 * timeline. Returns 0, AVERROR_EOF after the last loop, or another AVERROR. */
int source_read(struct source *s, AVPacket *pkt);

/* Output-timeline time (µs) of the next packet source_read() would return;
 * INT64_MIN when unknown. */
int64_t source_next_time_us(struct source *s);

/* Jump to pos_us of the file; the output timeline continues from where it
 * is (no jump back). Files only; -ENOTSUP for live sources. */
int source_seek(struct source *s, int64_t pos_us);
/* File position (µs) of the output-timeline time t_us. */
int64_t source_file_time_us(const struct source *s, int64_t t_us);

#endif
