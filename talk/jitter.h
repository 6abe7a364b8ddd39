/* jitter.h — the back channel's jitter buffer: RTP packets from one
 * talker, in whatever order and timing the network gave them, out in
 * sequence order at their play-out time.
 *
 * It reorders (within JITTER_SLOTS packets), drops duplicates and packets
 * that come after their turn, reports a missing packet as lost once a
 * later one is due (so the player can conceal it), and restarts on a jump
 * of the sequence or a new SSRC (the talker restarted). Play-out time of a
 * packet = the arrival time of the stream's earliest-arriving packet,
 * carried forward by RTP time, plus a fixed delay; the anchor follows the
 * earliest arrivals so that a sender clock a little slower or faster than
 * ours does not make the delay grow without bound.
 *
 * Pure data structure: no I/O, no allocation after jitter_init, the
 * caller gives the time. Packets are copied in (at most JITTER_MAX_PAYLOAD
 * bytes of payload each).
 */
#ifndef RTSPD_JITTER_H
#define RTSPD_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JITTER_SLOTS 64
#define JITTER_MAX_PAYLOAD 1500

struct rtp_view {
	uint8_t pt;
	bool marker;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	const uint8_t *payload;
	size_t payload_len;
};

/* Parses an RTP packet (RFC 3550 §5.1: version 2, CSRCs, header extension
 * and padding skipped). 0, or -EINVAL for anything malformed. */
int rtp_parse(const uint8_t *pkt, size_t len, struct rtp_view *v);

struct jitter_slot {
	bool used;
	uint16_t seq;
	uint32_t ts;
	uint8_t pt;
	int64_t arrival_us;
	size_t len;
	uint8_t payload[JITTER_MAX_PAYLOAD];
};

struct jitter_stats {
	uint64_t received;      /* accepted into the buffer */
	uint64_t played;        /* handed out as packets */
	uint64_t lost;          /* handed out as losses */
	uint64_t duplicates;
	uint64_t late;          /* arrived after their turn */
	uint64_t reordered;     /* arrived after a later packet, still in time */
	uint64_t restarts;      /* sequence jumps or new SSRC */
	uint64_t malformed;
};

struct jitter {
	uint32_t clock_rate;
	int64_t delay_us;
	bool started;
	uint32_t ssrc;
	uint16_t next_seq;       /* the next packet to hand out */
	uint16_t highest_seq;    /* the highest received */
	uint32_t base_ts;        /* the anchor: RTP time base_ts plays at base_us + delay */
	int64_t base_us;
	uint32_t last_out_ts;    /* RTP time of the last packet handed out */
	bool have_last_out;
	int64_t window_min_us;   /* earliest anchor offset seen in the current window */
	int64_t window_end_us;
	struct jitter_slot slots[JITTER_SLOTS];
	struct jitter_stats stats;
};

void jitter_init(struct jitter *j, uint32_t clock_rate, int64_t delay_us);

/* Takes one RTP packet that arrived at now_us. 0 accepted; -EINVAL
 * malformed; -EALREADY duplicate; -ETIME too late; -EMSGSIZE payload too
 * big. */
int jitter_put(struct jitter *j, const uint8_t *pkt, size_t len, int64_t now_us);

enum jitter_result {
	JITTER_NONE = 0,         /* nothing due yet */
	JITTER_PACKET = 1,       /* *out is the next packet */
	JITTER_LOST = 2,         /* the next packet is missing: conceal out->duration RTP ticks */
};

struct jitter_out {
	uint16_t seq;
	uint32_t ts;
	uint8_t pt;
	int64_t arrival_us;
	const uint8_t *payload;  /* valid until the next jitter_put/jitter_get */
	size_t len;
	uint32_t duration;       /* JITTER_LOST: RTP ticks to conceal (0: unknown) */
};

/* The next packet or loss due at now_us, in sequence order. */
enum jitter_result jitter_get(struct jitter *j, int64_t now_us, struct jitter_out *out);

/* When the next item is due (INT64_MAX when the buffer is empty). */
int64_t jitter_next_due(const struct jitter *j);

#endif
