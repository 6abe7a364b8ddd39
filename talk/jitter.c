/* jitter.c — see jitter.h. */
#include "talk/jitter.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define ANCHOR_WINDOW_US 1000000   /* how often a late-drifting anchor is moved */
#define RESTART_GAP 3000           /* a sequence jump this big is a new stream */

int rtp_parse(const uint8_t *p, size_t len, struct rtp_view *v)
{
	if (len < 12 || (p[0] >> 6) != 2)
		return -EINVAL;
	size_t off = 12 + 4 * (size_t)(p[0] & 0x0f);
	if (off > len)
		return -EINVAL;
	if (p[0] & 0x10) {   /* header extension: 4 bytes + length words */
		if (off + 4 > len)
			return -EINVAL;
		off += 4 + 4 * (size_t)(p[off + 2] << 8 | p[off + 3]);
		if (off > len)
			return -EINVAL;
	}
	size_t end = len;
	if (p[0] & 0x20) {   /* padding: the last byte says how much */
		size_t pad = p[len - 1];
		if (pad == 0 || pad > end - off)
			return -EINVAL;
		end -= pad;
	}
	v->marker = p[1] & 0x80;
	v->pt = p[1] & 0x7f;
	v->seq = (uint16_t)(p[2] << 8 | p[3]);
	v->ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	v->ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
	v->payload = p + off;
	v->payload_len = end - off;
	return 0;
}

void jitter_init(struct jitter *j, uint32_t clock_rate, int64_t delay_us)
{
	memset(j, 0, sizeof *j);
	j->clock_rate = clock_rate ? clock_rate : 8000;
	j->delay_us = delay_us;
}

/* Microseconds of RTP time from base_ts to ts (negative when before). */
static int64_t rtp_us(const struct jitter *j, uint32_t ts)
{
	return (int64_t)(int32_t)(ts - j->base_ts) * 1000000 / (int64_t)j->clock_rate;
}

static int64_t due_of(const struct jitter *j, uint32_t ts)
{
	return j->base_us + j->delay_us + rtp_us(j, ts);
}

static void restart(struct jitter *j, const struct rtp_view *v, int64_t now_us)
{
	for (int i = 0; i < JITTER_SLOTS; i++)
		j->slots[i].used = false;
	if (j->started)
		j->stats.restarts++;
	j->started = true;
	j->ssrc = v->ssrc;
	j->next_seq = v->seq;
	j->highest_seq = v->seq;
	j->base_ts = v->ts;
	j->base_us = now_us;
	j->have_last_out = false;
	j->window_min_us = INT64_MAX;
	j->window_end_us = now_us + ANCHOR_WINDOW_US;
}

int jitter_put(struct jitter *j, const uint8_t *pkt, size_t len, int64_t now_us)
{
	struct rtp_view v;
	if (rtp_parse(pkt, len, &v) < 0) {
		j->stats.malformed++;
		return -EINVAL;
	}
	if (v.payload_len > JITTER_MAX_PAYLOAD) {
		j->stats.malformed++;
		return -EMSGSIZE;
	}
	int16_t ahead = (int16_t)(v.seq - j->next_seq);
	if (!j->started || v.ssrc != j->ssrc || ahead > RESTART_GAP || ahead < -RESTART_GAP)
		restart(j, &v, now_us);
	else if (ahead < 0) {
		j->stats.late++;
		return -ETIME;
	} else if (ahead >= JITTER_SLOTS) {
		/* Far ahead but not a new stream: what lies between will not
		 * make it in time; start over at this packet. */
		restart(j, &v, now_us);
	}
	struct jitter_slot *s = &j->slots[v.seq % JITTER_SLOTS];
	if (s->used && s->seq == v.seq) {
		j->stats.duplicates++;
		return -EALREADY;
	}
	if ((int16_t)(v.seq - j->highest_seq) < 0)
		j->stats.reordered++;
	else
		j->highest_seq = v.seq;
	/* The anchor follows the earliest arrival: a packet that came sooner
	 * (relative to its RTP time) than the anchor says moves it at once;
	 * when a whole window arrived later, the anchor moves later to it. */
	int64_t offset = now_us - rtp_us(j, v.ts);
	if (offset < j->base_us)
		j->base_us = offset;
	if (offset < j->window_min_us)
		j->window_min_us = offset;
	if (now_us >= j->window_end_us) {
		if (j->window_min_us != INT64_MAX && j->window_min_us > j->base_us)
			j->base_us = j->window_min_us;
		j->window_min_us = INT64_MAX;
		j->window_end_us = now_us + ANCHOR_WINDOW_US;
	}
	s->used = true;
	s->seq = v.seq;
	s->ts = v.ts;
	s->pt = v.pt;
	s->arrival_us = now_us;
	s->len = v.payload_len;
	memcpy(s->payload, v.payload, v.payload_len);
	j->stats.received++;
	return 0;
}

static const struct jitter_slot *slot_of(const struct jitter *j, uint16_t seq)
{
	const struct jitter_slot *s = &j->slots[seq % JITTER_SLOTS];
	return s->used && s->seq == seq ? s : NULL;
}

/* The first packet after next_seq that is here, and how far it is. */
static const struct jitter_slot *next_present(const struct jitter *j, int *distance)
{
	int span = (int16_t)(j->highest_seq - j->next_seq);
	for (int k = 1; k <= span && k < JITTER_SLOTS; k++) {
		const struct jitter_slot *s = slot_of(j, (uint16_t)(j->next_seq + k));
		if (s) {
			*distance = k;
			return s;
		}
	}
	return NULL;
}

enum jitter_result jitter_get(struct jitter *j, int64_t now_us, struct jitter_out *out)
{
	if (!j->started)
		return JITTER_NONE;
	struct jitter_slot *s = &j->slots[j->next_seq % JITTER_SLOTS];
	if (s->used && s->seq == j->next_seq) {
		if (due_of(j, s->ts) > now_us)
			return JITTER_NONE;
		s->used = false;
		*out = (struct jitter_out){ .seq = s->seq, .ts = s->ts, .pt = s->pt, .arrival_us = s->arrival_us,
					    .payload = s->payload, .len = s->len };
		j->next_seq++;
		j->last_out_ts = s->ts;
		j->have_last_out = true;
		j->stats.played++;
		return JITTER_PACKET;
	}
	int k;
	const struct jitter_slot *later = next_present(j, &k);
	if (!later || due_of(j, later->ts) > now_us)
		return JITTER_NONE;
	/* Its successor is due, so this one is not coming in time. Its length
	 * is the RTP time from the last packet out to the successor, shared
	 * by the packets in between. */
	uint32_t duration = 0;
	if (j->have_last_out && (int32_t)(later->ts - j->last_out_ts) > 0)
		duration = (later->ts - j->last_out_ts) / (uint32_t)(k + 1);
	*out = (struct jitter_out){ .seq = j->next_seq, .ts = j->last_out_ts + duration, .duration = duration };
	j->last_out_ts += duration;
	j->next_seq++;
	j->stats.lost++;
	return JITTER_LOST;
}

int64_t jitter_next_due(const struct jitter *j)
{
	if (!j->started)
		return INT64_MAX;
	const struct jitter_slot *s = slot_of(j, j->next_seq);
	int k;
	if (!s)
		s = next_present(j, &k);
	return s ? due_of(j, s->ts) : INT64_MAX;
}
