/* ring.h — single-writer, many-reader packet ring in shared memory.
 *
 * The writer creates the ring (a memfd), the readers attach to the fd (in
 * the same process, or in another one that received the fd). The writer
 * owns the fd and the mapping it created; a reader owns its own mapping and
 * the fd it was given. Nobody blocks: a reader that falls more than the ring
 * behind finds its packets gone (-ESTALE) and skips to the latest key frame.
 */
#ifndef RTSPD_RING_H
#define RTSPD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ring-t.h"

struct ring {
	struct ring_hdr *hdr;
	struct ring_slot *slots;
	uint8_t *data;
	size_t map_size;
	int fd;
	bool writer;
};

/* Writer: nslots is rounded up to a power of two. Returns 0 or -errno. */
int ring_create(struct ring *r, const char *name, uint32_t nslots, uint32_t data_size);
/* Reader: maps the ring behind fd (dup'ed; the caller keeps its fd). */
int ring_attach(struct ring *r, int fd);
void ring_close(struct ring *r);

void ring_set_track(struct ring *r, unsigned track, uint32_t clock_rate, uint32_t ssrc);

/* Writes one packet; returns its index. len <= RING_MAX_PACKET. */
uint64_t ring_write(struct ring *r, unsigned track, unsigned flags, int64_t time_us,
		    uint32_t rtp_ts, const void *pkt, size_t len);

/* Index of the next packet to be written. */
uint64_t ring_head(const struct ring *r);
/* Where a new viewer starts: the latest key frame, or the head when none. */
uint64_t ring_join_point(const struct ring *r);

/* Looks at packet seq. 0: *slot and *data are valid (until the writer laps
 * the reader: check ring_valid() after use); -EAGAIN: not written yet;
 * -ESTALE: already overwritten. */
int ring_peek(const struct ring *r, uint64_t seq, struct ring_slot *slot, const uint8_t **data);
bool ring_valid(const struct ring *r, uint64_t seq, uint64_t pos);

/* True when packet seq is so old that the writer will overwrite it soon:
 * the reader should skip ahead to ring_join_point(). */
bool ring_lagging(const struct ring *r, uint64_t seq);

/* RTP timestamp of track at monotonic time now_us (for RTCP SR). */
uint32_t ring_rtp_at(const struct ring *r, unsigned track, int64_t now_us);

#endif
