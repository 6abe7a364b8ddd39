/* mcast.c — the worker's multicast sender (RTP/AVP;multicast, SPEC §4).
 *
 * One stream per worker, so one group per worker: the master assigned it
 * (cfg.mcast_group, ports cfg.mcast_port + 2i for track i, RTCP + 1), and
 * no client chooses it. Every multicast session of the stream shares it.
 *
 * The sender is a pseudo-viewer of the stream's media: its own ring
 * cursor and one connected UDP socket per track (IP_MULTICAST_TTL from the
 * config, IP_MULTICAST_LOOP on so receivers on this host hear it too). It
 * sends each packet once, however many sessions share the group, with the
 * same sendmmsg/UDP_SEGMENT path as unicast UDP; what a full socket does
 * not take is dropped, so it never holds the ring back. A live stream's
 * sender reads the worker's live media; an on-demand stream (each unicast
 * session has its own media) gets one broadcast media of its own, started
 * by the first multicast PLAY and paused when the group goes quiet.
 *
 * Refcount: `playing` counts the sessions in PLAYING state (each one
 * counted at most once, s->mcast_counted); data flows while it is > 0 and
 * stops when the last one leaves (TEARDOWN, PAUSE, timeout, connection
 * loss, kick). `users` counts multicast sessions not yet freed; the sender
 * and its sockets go with the last one.
 *
 * RTCP: sender reports (SR + SDES) to each track's RTCP port when the
 * group starts, when a viewer joins (so it can sync at once), every 5 s,
 * and BYE at end of stream or worker stop. Receiver reports sent to the
 * group are not read: sessions stay alive through RTSP requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/rtcp.h"
#include "worker/worker.h"

#define MCAST_BATCH 64
#define MCAST_SR_INTERVAL_US 5000000

_Static_assert(2 * SOURCE_MAX_TRACKS <= CFG_MCAST_PORTS, "the master reserves too few multicast ports per stream");

static int mcast_socket(const struct worker *w, int port)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, w->cfg.mcast_group, &dst.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int ttl = w->cfg.mcast_ttl, loop = 1;
	int r = 0;
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0)
		r = -errno;
	/* A server bound to one address sends from that interface. */
	struct in_addr ifaddr;
	if (!r && w->cfg.serverip[0] && inet_pton(AF_INET, w->cfg.serverip, &ifaddr) == 1 &&
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof ifaddr) < 0)
		r = -errno;
	/* Connected: the route is looked up once, and sendmmsg needs no address. */
	if (!r && connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0)
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

static void mcast_free(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (!mc)
		return;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++) {
		if (mc->rtp_fd[i] >= 0)
			close(mc->rtp_fd[i]);
		if (mc->rtcp_fd[i] >= 0)
			close(mc->rtcp_fd[i]);
	}
	if (mc->own_media) {
		w->bytes_in_closed += media_bytes_in(mc->media);
		media_close(&mc->media);
	}
	log_info("multicast group %s: closed (%llu packets sent, %llu dropped, %llu skips)", w->cfg.mcast_group,
		 (unsigned long long)mc->packets_out, (unsigned long long)mc->drops, (unsigned long long)mc->skips);
	free(mc);
	w->mcast = NULL;
}

static int mcast_open(struct worker *w, char *err, size_t errlen)
{
	struct mcast *mc = calloc(1, sizeof *mc);
	if (!mc) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		mc->rtp_fd[i] = mc->rtcp_fd[i] = -1;
	w->mcast = mc;
	if (w->live) {
		mc->media = w->live;
	} else {
		/* On demand: the group is one broadcast, not a per-viewer
		 * position, so it gets a live media of its own (no PAUSE or seek
		 * of its own; it loops as <loop_nums> says). */
		struct media_params mp = {
			.source_kind = (int)w->cfg.source_kind, .path = w->cfg.file_path,
			.loop_nums = w->cfg.loop_nums, .live = true,
			.ring_slots = (uint32_t)w->cfg.ring_size_kb, .ring_bytes = (uint32_t)w->cfg.ring_size_kb * 1024,
		};
		int r = media_open(&mc->media, w->loop, &mp, sessions_notify, w, err, errlen);
		if (r < 0) {
			mcast_free(w);
			return r;
		}
		mc->own_media = true;
	}
	for (int i = 0; i < media_ntracks(mc->media); i++) {
		int port = w->cfg.mcast_port + 2 * i;
		int a = mcast_socket(w, port);
		int b = a >= 0 ? mcast_socket(w, port + 1) : a;
		if (a < 0 || b < 0) {
			int e = a < 0 ? a : b;
			if (a >= 0)
				close(a);
			snprintf(err, errlen, "cannot send to multicast group %s port %d: %s", w->cfg.mcast_group,
				 port, strerror(-e));
			mcast_free(w);
			return e;
		}
		mc->rtp_fd[i] = a;
		mc->rtcp_fd[i] = b;
	}
	log_info("multicast group %s, ports %d-%d, ttl %d: ready", w->cfg.mcast_group, w->cfg.mcast_port,
		 w->cfg.mcast_port + 2 * media_ntracks(mc->media) - 1, w->cfg.mcast_ttl);
	return 0;
}

int mcast_attach(struct worker *w, struct session *s, char *err, size_t errlen)
{
	if (!w->cfg.mcast_group[0]) {
		snprintf(err, errlen, "no multicast group was assigned to this stream");
		return -EADDRNOTAVAIL;
	}
	if (!w->mcast) {
		int r = mcast_open(w, err, errlen);
		if (r < 0)
			return r;
	}
	w->mcast->users++;
	s->mcast = true;
	s->media = w->mcast->media;
	s->own_media = false;
	return 0;
}

static void mcast_report(struct worker *w, int track, bool bye)
{
	struct mcast *mc = w->mcast;
	struct ring *r = media_ring(mc->media);
	const struct media_track *mt = media_track(mc->media, track);
	uint8_t buf[128];
	uint32_t rtp = ring_rtp_at(r, (unsigned)track, ev_now_us());
	int n = bye ? rtcp_build_bye(buf, sizeof buf, mt->ssrc, rtcp_ntp_now(), rtp, mc->packets[track],
				     mc->octets[track], w->cname)
		    : rtcp_build_sr(buf, sizeof buf, mt->ssrc, rtcp_ntp_now(), rtp, mc->packets[track],
				    mc->octets[track], w->cname);
	if (n > 0 && mc->rtcp_fd[track] >= 0 && send(mc->rtcp_fd[track], buf, (size_t)n, MSG_DONTWAIT) == n)
		w->bytes_out += (uint64_t)n;
}

static void mcast_send_sr(struct worker *w)
{
	struct mcast *mc = w->mcast;
	struct ring *r = media_ring(mc->media);
	for (int i = 0; i < media_ntracks(mc->media); i++) {
		/* A track with no packet yet has no RTP clock to report. */
		if (mc->bye_sent[i] || !r->hdr->tracks[i].packets)
			continue;
		mcast_report(w, i, false);
		mc->sr_sent[i] = true;
	}
	mc->last_sr_us = ev_now_us();
}

uint64_t mcast_next_packet(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (!mc)
		return 0;
	if (mc->playing > 0)
		return mc->cursor;
	uint64_t jp = ring_join_point(media_ring(mc->media));
	return jp > mc->cursor ? jp : mc->cursor;
}

/* The first viewer plays: the group starts at the latest key frame (or,
 * for a paused broadcast of our own, where it stopped). */
static void mcast_start(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (mc->own_media && !media_playing(mc->media) && media_play(mc->media) < 0)
		log_warn("multicast group %s: the stream has ended, nothing to send", w->cfg.mcast_group);
	mc->cursor = mcast_next_packet(w);
	log_info("multicast group %s: first viewer playing, sending", w->cfg.mcast_group);
	mcast_send_sr(w);
	mcast_send(w);
}

/* The last viewer left: nothing more goes to the group. */
static void mcast_quiet(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (mc->own_media)
		media_pause(mc->media);
	log_info("multicast group %s: no viewer playing, the group goes quiet", w->cfg.mcast_group);
}

void mcast_session_update(struct session *s)
{
	struct worker *w = s->w;
	struct mcast *mc = w->mcast;
	bool want = s->mcast && !s->dead && s->state == SESSION_PLAYING;
	if (!mc || want == s->mcast_counted)
		return;
	s->mcast_counted = want;
	if (want) {
		if (mc->playing++ == 0)
			mcast_start(w);
		else
			mcast_send_sr(w);   /* the new viewer syncs at once, not in 5 s */
	} else if (--mc->playing == 0) {
		mcast_quiet(w);
	}
}

void mcast_detach(struct worker *w, struct session *s)
{
	struct mcast *mc = w->mcast;
	if (!s->mcast || !mc)
		return;
	if (s->mcast_counted) {
		s->mcast_counted = false;
		if (--mc->playing == 0)
			mcast_quiet(w);
	}
	s->mcast = false;
	s->media = NULL;
	if (--mc->users <= 0)
		mcast_free(w);
}

/* What the group carried counts for every viewer playing it. */
static void mcast_account(struct worker *w, int track, const struct iovec *iov, int n)
{
	struct mcast *mc = w->mcast;
	uint64_t bytes = 0;
	for (int k = 0; k < n; k++) {
		bytes += iov[k].iov_len;
		mc->octets[track] += (uint32_t)(iov[k].iov_len > 12 ? iov[k].iov_len - 12 : 0);
	}
	mc->packets[track] += (uint32_t)n;
	mc->packets_out += (uint64_t)n;
	mc->bytes_out += bytes;
	w->packets_out += (uint64_t)n;
	w->bytes_out += bytes;
	for (struct session *s = w->sessions; s; s = s->next)
		if (s->mcast_counted) {
			s->packets_out += (uint64_t)n;
			s->bytes_out += bytes;
		}
}

void mcast_send(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (!mc || mc->playing <= 0)
		return;
	struct ring *r = media_ring(mc->media);
	int ntracks = media_ntracks(mc->media);
	for (int round = 0; round < 32; round++) {
		/* Only a stalled event loop gets the sender this far behind. */
		if (ring_lagging(r, mc->cursor)) {
			uint64_t jp = ring_join_point(r);
			if (jp > mc->cursor) {
				mc->cursor = jp;
				mc->skips++;
			}
		}
		struct iovec iov[SOURCE_MAX_TRACKS][MCAST_BATCH];
		int nm[SOURCE_MAX_TRACKS] = { 0 };
		int total = 0;
		while (total < MCAST_BATCH) {
			struct ring_slot slot;
			const uint8_t *d;
			int e = ring_peek(r, mc->cursor, &slot, &d);
			if (e == -EAGAIN)
				break;
			if (e == -ESTALE) {
				if (total)
					break;
				uint64_t jp = ring_join_point(r);
				mc->cursor = jp > mc->cursor ? jp : ring_head(r);
				mc->skips++;
				continue;
			}
			if (slot.flags & RING_EOS) {
				if (total)
					break;
				if (slot.track < ntracks && !mc->bye_sent[slot.track]) {
					mcast_report(w, slot.track, true);
					mc->bye_sent[slot.track] = true;
					log_info("multicast group %s: end of stream, RTCP BYE sent on track %d",
						 w->cfg.mcast_group, slot.track);
				}
				mc->cursor++;
				continue;
			}
			mc->cursor++;
			if (slot.track >= ntracks || mc->rtp_fd[slot.track] < 0)
				continue;
			int t = slot.track;
			iov[t][nm[t]++] = (struct iovec){ (void *)d, slot.len };
			total++;
		}
		if (!total)
			break;
		for (int t = 0; t < ntracks; t++) {
			if (!nm[t])
				continue;
			int done = udp_send_packets(w, mc->rtp_fd[t], iov[t], nm[t]);
			mcast_account(w, t, iov[t], done);
			mc->drops += (uint64_t)(nm[t] - done);
		}
		if (total < MCAST_BATCH)
			break;
	}
	/* A track whose first packets came after the group started. */
	for (int i = 0; i < ntracks; i++)
		if (!mc->sr_sent[i] && r->hdr->tracks[i].packets) {
			mcast_send_sr(w);
			break;
		}
}

void mcast_housekeeping(struct worker *w, int64_t now)
{
	struct mcast *mc = w->mcast;
	if (!mc)
		return;
	/* The refcount must match the sessions it counts; a mismatch is a bug
	 * that would keep the group sending (or silent) for good, so it is
	 * logged and repaired rather than left. */
	int playing = 0;
	for (struct session *s = w->sessions; s; s = s->next)
		playing += s->mcast_counted;
	if (playing != mc->playing) {
		log_error("multicast group %s: %d sessions counted as playing, %d really are: repaired",
			  w->cfg.mcast_group, mc->playing, playing);
		bool was = mc->playing > 0;
		mc->playing = playing;
		if (was && !playing)
			mcast_quiet(w);
		else if (!was && playing)
			mcast_start(w);
	}
	if (mc->playing > 0 && now - mc->last_sr_us >= MCAST_SR_INTERVAL_US)
		mcast_send_sr(w);
}

void mcast_bye(struct worker *w)
{
	struct mcast *mc = w->mcast;
	if (!mc || mc->playing <= 0)
		return;
	for (int i = 0; i < media_ntracks(mc->media); i++)
		if (mc->sr_sent[i] && !mc->bye_sent[i]) {
			mcast_report(w, i, true);
			mc->bye_sent[i] = true;
		}
}

void mcast_close(struct worker *w)
{
	mcast_free(w);
}
