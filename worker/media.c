/* media.c — see media.h. */
#include "worker/media.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "common/ipc-t.h"
#include "common/log.h"
#include "worker/packetizer.h"

/* The media wakes at most every MEDIA_QUANTUM_US and then produces every
 * packet due before the next wake-up: viewers get one write per quantum
 * with everything in it, rather than one per audio or video frame. Fewer,
 * larger writes are most of the cost of fan-out (syscalls, TCP segments,
 * loopback deliveries); packets leave at most two quanta early, never
 * late. 80 ms rather than 40 cut TCP fan-out CPU by a quarter; a file's
 * packets sent early cost the viewer nothing (its jitter buffer orders by
 * RTP time). */
#define MEDIA_QUANTUM_US 80000
#define MEDIA_LEAD_US MEDIA_QUANTUM_US
/* Packets produced per event-loop turn before yielding to sessions. */
#define MEDIA_BATCH 256

struct media_pk {
	struct packetizer *pk;
	struct media *m;
	int track;
	uint32_t clock_rate;
	bool have_base;
	uint32_t last_ts;         /* RTP timestamp of the last packet */
	int64_t media_clock;      /* its media time, clock units, unwrapped */
	int64_t first_pts_clock;  /* pts (clock units) of the first packet written */
	bool first_written;
	uint16_t next_seq;
};

struct media {
	struct ev_loop *loop;
	struct source *src;
	struct ring ring;
	bool live;
	int ntracks;
	bool has_video;
	struct media_track tracks[SOURCE_MAX_TRACKS];
	struct media_pk pks[SOURCE_MAX_TRACKS];
	media_notify_fn notify;
	void *arg;
	long long timer;
	bool playing, ended, rebase;
	int64_t origin_us;          /* monotonic time of output-timeline 0 */
	int64_t paused_at;
	const uint64_t *reader;
	AVPacket *pkt;
	int produced;               /* packets since the last notify */
};

static uint32_t random_u32(void)
{
	uint32_t v = 0;
	if (getrandom(&v, sizeof v, 0) != sizeof v)
		v = (uint32_t)ev_now_us() * 2654435761u;
	return v;
}

static void media_on_rtp(void *arg, const uint8_t *rtp, size_t len, bool key)
{
	struct media_pk *mp = arg;
	struct media *m = mp->m;
	uint32_t ts = (uint32_t)rtp[4] << 24 | (uint32_t)rtp[5] << 16 | (uint32_t)rtp[6] << 8 | rtp[7];
	uint16_t seq = (uint16_t)(rtp[2] << 8 | rtp[3]);
	/* Media time in clock units, unwrapped by signed steps: the first
	 * packet carries the first pts written (which may be negative, e.g. AAC
	 * encoder priming), later ones move by their RTP timestamp difference. */
	if (!mp->have_base) {
		mp->media_clock = mp->first_pts_clock;
		mp->have_base = true;
	} else {
		mp->media_clock += (int32_t)(ts - mp->last_ts);
	}
	mp->last_ts = ts;
	int64_t media_clock = mp->media_clock;
	int64_t t_us = m->origin_us + av_rescale(media_clock, 1000000, mp->clock_rate);
	unsigned flags = 0;
	/* Viewers start at video key frames; audio-only streams anywhere. */
	if (key && (m->tracks[mp->track].type == AVMEDIA_TYPE_VIDEO || !m->has_video))
		flags |= RING_KEY;
	if (rtp[1] & 0x80)
		flags |= RING_MARKER;
	ring_write(&m->ring, (unsigned)mp->track, flags, t_us, ts, rtp, len);
	m->ring.hdr->tracks[mp->track].next_seq = (uint16_t)(seq + 1);
	mp->next_seq = (uint16_t)(seq + 1);
	m->produced++;
}

int media_open(struct media **out, struct ev_loop *loop, const struct media_params *mp,
	       media_notify_fn notify, void *arg, char *err, size_t errlen)
{
	struct media *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->live = mp->live;
	m->notify = notify;
	m->arg = arg;
	m->ring.fd = -1;
	int r = source_open(&m->src, mp->source_kind, mp->path, mp->loop_nums, err, errlen);
	if (r < 0)
		goto fail;
	m->pkt = av_packet_alloc();
	if (!m->pkt) {
		r = -ENOMEM;
		goto fail;
	}
	r = ring_create(&m->ring, "rtspd-ring", mp->ring_slots, mp->ring_bytes);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the packet ring: %s", strerror(-r));
		goto fail;
	}
	m->ntracks = source_ntracks(m->src);
	for (int i = 0; i < m->ntracks; i++)
		if (source_track(m->src, i)->type == AVMEDIA_TYPE_VIDEO)
			m->has_video = true;
	for (int i = 0; i < m->ntracks; i++) {
		const struct source_track *st = source_track(m->src, i);
		struct media_pk *p = &m->pks[i];
		p->m = m;
		p->track = i;
		uint32_t ssrc = random_u32();
		r = packetizer_open(&p->pk, st->par, st->time_base, -1, ssrc, media_on_rtp, p, err, errlen);
		if (r < 0)
			goto fail;
		p->clock_rate = packetizer_clock_rate(p->pk);
		struct media_track *t = &m->tracks[i];
		t->payload_type = packetizer_payload_type(p->pk);
		t->clock_rate = p->clock_rate;
		t->ssrc = ssrc;
		t->type = st->type;
		if (packetizer_sdp(p->pk, t->sdp, sizeof t->sdp) < 0) {
			snprintf(err, errlen, "SDP for track %d too long", i);
			r = -ENOSPC;
			goto fail;
		}
		ring_set_track(&m->ring, (unsigned)i, p->clock_rate, ssrc);
	}
	*out = m;
	return 0;
fail:
	media_close(&m);
	return r < 0 ? r : -EINVAL;
}

void media_close(struct media **mp)
{
	struct media *m = *mp;
	if (!m)
		return;
	if (m->timer > 0)
		ev_timer_del(m->loop, m->timer);
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		packetizer_close(&m->pks[i].pk);
	source_close(&m->src);
	av_packet_free(&m->pkt);
	if (m->ring.hdr)
		ring_close(&m->ring);
	free(m);
	*mp = NULL;
}

int media_ntracks(const struct media *m) { return m->ntracks; }
const struct media_track *media_track(const struct media *m, int i) { return &m->tracks[i]; }
struct ring *media_ring(struct media *m) { return &m->ring; }

uint64_t media_bytes_in(const struct media *m)
{
	uint64_t n = 0;
	if (m && m->ring.hdr)
		for (int i = 0; i < m->ntracks; i++)
			n += m->ring.hdr->tracks[i].octets;
	return n;
}
bool media_is_live(const struct media *m) { return m->live; }
bool media_seekable(const struct media *m) { return !m->live && !source_is_live(m->src); }
bool media_ended(const struct media *m) { return m->ended; }
bool media_playing(const struct media *m) { return m->playing; }

double media_duration(const struct media *m)
{
	if (m->live)
		return 0;
	return (double)source_duration_us(m->src) / 1e6;
}

static bool media_throttled(const struct media *m)
{
	if (!m->reader)
		return false;
	uint64_t head = ring_head(&m->ring);
	uint64_t cur = *m->reader;
	return head > cur && head - cur > m->ring.hdr->nslots / 4;
}

static void media_end(struct media *m)
{
	m->ended = true;
	m->playing = false;
	for (int i = 0; i < m->ntracks; i++)
		ring_write(&m->ring, (unsigned)i, RING_EOS, ev_now_us(), 0, NULL, 0);
	m->produced++;
}

/* Produce every packet that is due; returns the delay (ms) until the next. */
static int64_t media_produce(struct media *m)
{
	int n = 0;
	while (m->playing && n < MEDIA_BATCH) {
		if (media_throttled(m))
			return 10;
		int64_t t = source_next_time_us(m->src);
		if (t == INT64_MIN) {
			media_end(m);
			break;
		}
		int64_t now = ev_now_us();
		if (m->rebase) {
			m->origin_us = now - t;
			m->rebase = false;
		}
		int64_t due = m->origin_us + t;
		if (due > now + MEDIA_LEAD_US) {
			int64_t ms = (due - now - MEDIA_LEAD_US) / 1000;
			if (ms < MEDIA_QUANTUM_US / 1000)
				ms = MEDIA_QUANTUM_US / 1000;
			if (m->produced) {
				m->produced = 0;
				m->notify(m, m->arg);
			}
			return ms < 1 ? 1 : ms;
		}
		if (source_read(m->src, m->pkt) < 0) {
			media_end(m);
			break;
		}
		int track = m->pkt->stream_index;
		struct media_pk *p = &m->pks[track];
		if (!p->first_written) {
			p->first_written = true;
			p->first_pts_clock = av_rescale_q(m->pkt->pts, source_track(m->src, track)->time_base,
							  (AVRational){ 1, (int)p->clock_rate });
		}
		int r = packetizer_write(p->pk, m->pkt);
		if (r < 0)
			log_debug("track %d: packet not sent: %s", track, av_err2str(r));
		av_packet_unref(m->pkt);
		n++;
	}
	if (m->produced) {
		m->produced = 0;
		m->notify(m, m->arg);
	}
	return m->playing ? 0 : -1;
}

static int64_t media_timer(struct ev_loop *loop, long long id, void *arg)
{
	struct media *m = arg;
	int64_t next = media_produce(m);
	if (next < 0)
		m->timer = 0;
	return next;
}

static void media_arm(struct media *m, int64_t delay_ms)
{
	if (m->timer > 0)
		ev_timer_del(m->loop, m->timer);
	m->timer = ev_timer_add(m->loop, delay_ms, media_timer, m);
}

int media_play(struct media *m)
{
	if (m->ended)
		return -ENODATA;
	if (m->playing)
		return 0;
	if (m->paused_at) {
		m->origin_us += ev_now_us() - m->paused_at;
		m->paused_at = 0;
	} else if (!m->origin_us) {
		m->rebase = true;
	}
	m->playing = true;
	if (!m->live) {
		/* Prime: produce until every track has a packet in the ring (at
		 * most one second of media), so PLAY's RTP-Info is exact. */
		int64_t limit = ev_now_us() + 1000000;
		for (int guard = 0; guard < 2000; guard++) {
			bool all = true;
			for (int i = 0; i < m->ntracks; i++)
				if (!m->pks[i].have_base || m->ring.hdr->tracks[i].packets == 0)
					all = false;
			if (all || !m->playing)
				break;
			int64_t t = source_next_time_us(m->src);
			if (t == INT64_MIN)
				break;
			if (m->rebase) {
				m->origin_us = ev_now_us() - t;
				m->rebase = false;
			}
			if (m->origin_us + t > limit)
				break;
			if (source_read(m->src, m->pkt) < 0)
				break;
			struct media_pk *p = &m->pks[m->pkt->stream_index];
			if (!p->first_written) {
				p->first_written = true;
				p->first_pts_clock = av_rescale_q(m->pkt->pts,
					source_track(m->src, m->pkt->stream_index)->time_base,
					(AVRational){ 1, (int)p->clock_rate });
			}
			packetizer_write(p->pk, m->pkt);
			av_packet_unref(m->pkt);
		}
		m->produced = 0;   /* the session sends them after its PLAY response */
	}
	media_arm(m, 0);
	return 0;
}

void media_pause(struct media *m)
{
	if (!m->playing)
		return;
	m->playing = false;
	m->paused_at = ev_now_us();
	if (m->timer > 0) {
		ev_timer_del(m->loop, m->timer);
		m->timer = 0;
	}
}

int media_seek(struct media *m, double npt)
{
	if (!media_seekable(m))
		return -ENOTSUP;
	int r = source_seek(m->src, (int64_t)(npt * 1e6));
	if (r < 0)
		return r;
	m->rebase = true;
	m->ended = false;
	m->paused_at = 0;
	return 0;
}

double media_position(struct media *m)
{
	int64_t t = source_next_time_us(m->src);
	if (t == INT64_MIN)
		return media_duration(m);
	double pos = (double)source_file_time_us(m->src, t) / 1e6;
	return pos < 0 ? 0 : pos;
}

void media_set_reader(struct media *m, const uint64_t *cursor)
{
	m->reader = cursor;
}

void media_kick(struct media *m)
{
	if (m->playing && m->timer <= 0)
		media_arm(m, 0);
}
