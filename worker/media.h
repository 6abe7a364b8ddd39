/* media.h — one running pipeline: source -> packetizers -> ring, paced in
 * real time on the worker's event loop.
 *
 * A live media (test pattern, live-mode file) is shared by every session of
 * the stream; an on-demand media belongs to one session (its own position,
 * PAUSE, seeking) and is throttled by that session's reading instead of
 * skipping. The media owns its source, packetizers and ring.
 */
#ifndef RTSPD_MEDIA_H
#define RTSPD_MEDIA_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ev.h"
#include "common/ring.h"
#include "worker/source.h"

struct media;

/* Called after new packets went into the ring. */
typedef void (*media_notify_fn)(struct media *m, void *arg);

struct media_track {
	int payload_type;
	uint32_t clock_rate;
	uint32_t ssrc;
	enum AVMediaType type;
	char sdp[2048];          /* m= section without a=control */
};

struct media_params {
	int source_kind;         /* enum source_kind */
	const char *path;
	int loop_nums;
	bool live;
	uint32_t ring_slots;
	uint32_t ring_bytes;
};

int media_open(struct media **out, struct ev_loop *loop, const struct media_params *mp,
	       media_notify_fn notify, void *arg, char *err, size_t errlen);
void media_close(struct media **m);

int media_ntracks(const struct media *m);
const struct media_track *media_track(const struct media *m, int i);
struct ring *media_ring(struct media *m);
/* RTP bytes the media has written into its ring so far (0 for NULL). */
uint64_t media_bytes_in(const struct media *m);
bool media_is_live(const struct media *m);
bool media_seekable(const struct media *m);
double media_duration(const struct media *m);   /* seconds, 0 when unknown/live */
bool media_ended(const struct media *m);

/* Start (or resume) producing. On demand: first produces up to one packet
 * per track synchronously so PLAY can answer with exact RTP-Info. */
int media_play(struct media *m);
void media_pause(struct media *m);
bool media_playing(const struct media *m);
/* Seek to npt seconds (on demand). */
int media_seek(struct media *m, double npt);
/* File position (npt seconds) of the next packet to be produced. */
double media_position(struct media *m);

/* On-demand throttle: the media stops producing while the reader at
 * *cursor is far behind. NULL for none. */
void media_set_reader(struct media *m, const uint64_t *cursor);
/* The reader made progress: resume a throttled media. */
void media_kick(struct media *m);

#endif
