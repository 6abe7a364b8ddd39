/* session.c — RTSP sessions and the media send path.
 *
 * A playing session holds a cursor into its media's ring and sends from it:
 * TCP interleaved with one writev per batch (a 4-byte '$' header of the
 * session's own plus the packet bytes straight from the ring: no copy),
 * UDP with one sendmmsg per track and batch. A session that cannot keep up
 * with a live stream (its socket stays full, or it lags more than
 * LIVE_MAX_LAG_US) jumps to the latest key frame in the ring; an on-demand
 * session instead slows its own media down (media_set_reader).
 *
 * SRTP sessions (?srtp=1) take one extra step per batch, after it was
 * gathered: each packet is copied into the session's own buffer and
 * protected there (libsrtp works in place and the ring is shared), and the
 * batch is sent from the copies. Plain sessions never enter that step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/rtcp.h"
#include "proto/ws.h"
#include "worker/packetizer.h"
#include "worker/worker.h"

#define SEND_BATCH 64
#define LIVE_MAX_LAG_US 2000000
#define LIVE_MAX_STALL_US 1000000
#define SR_INTERVAL_US 5000000
/* One protected copy per packet of a batch: RTP_MTU plus what libsrtp may
 * append, rounded to keep every copy aligned. */
#define SRTP_STRIDE 2048
_Static_assert(RTP_MTU + SRTP_TX_SPARE <= SRTP_STRIDE, "SRTP copy slot too small");

struct session *session_new(struct worker *w, struct client *c)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->w = w;
	uint8_t rnd[SESSION_ID_LEN / 2];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (uint8_t)(ev_now_us() >> (i % 8));
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(s->id + 2 * i, 3, "%02X", rnd[i]);
	s->port_base = -1;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++) {
		s->tracks[i].rtp_fd = -1;
		s->tracks[i].rtcp_fd = -1;
	}
	s->last_seen_us = s->created_us = s->rate_prev_us = ev_now_us();
	snprintf(s->peer, sizeof s->peer, "%s", c->peer);
	s->peer_addr = c->peer_addr;
	s->setup_conn = c->conn_id;
	s->setup_client = c;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	w->nsessions++;
	return s;
}

struct session *session_find(struct worker *w, const char *id)
{
	for (struct session *s = w->sessions; s; s = s->next)
		if (!s->dead && !strcmp(s->id, id))
			return s;
	return NULL;
}

int session_srtp_start(struct session *s, const uint8_t keys[][SRTP_KEY_LEN], int ntracks)
{
	s->srtp_buf = aligned_alloc(64, (size_t)SEND_BATCH * SRTP_STRIDE);
	if (!s->srtp_buf)
		return -ENOMEM;
	for (int i = 0; i < ntracks && i < SOURCE_MAX_TRACKS; i++) {
		int r = srtp_tx_create(&s->srtp[i], keys[i]);
		if (r < 0)
			return r;   /* session_free() releases what was made */
	}
	return 0;
}

/* RTCP from the client (UDP or interleaved) keeps the session alive when
 * it is plain RTCP (ffmpeg sends its receiver reports unprotected even on
 * SRTP tracks) or SRTCP authentic under the track's key. */
bool session_rtcp_ok(struct session *s, int track, const uint8_t *buf, size_t len)
{
	if (rtcp_valid(buf, len))
		return true;
	return track >= 0 && track < SOURCE_MAX_TRACKS && s->srtp[track] &&
	       srtp_tx_check_rtcp(s->srtp[track], buf, len) == 0;
}

static int session_send_rtcp(struct session *s, int track, const uint8_t *buf, size_t len)
{
	struct session_track *t = &s->tracks[track];
	if (t->tcp) {
		if (!s->client || s->client->dead)
			return -EPIPE;
		uint8_t hdr[4] = { '$', (uint8_t)t->ch_rtcp, (uint8_t)(len >> 8), (uint8_t)len };
		int r = client_queue(s->client, hdr, 4);
		return r ? r : client_queue(s->client, buf, len);
	}
	if (t->rtcp_fd < 0)
		return -EBADF;
	ssize_t n = sendto(t->rtcp_fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&t->rtcp_dst, t->dst_len);
	return n < 0 ? -errno : 0;
}

static void session_send_report(struct session *s, int track, bool bye)
{
	struct session_track *t = &s->tracks[track];
	struct ring *r = media_ring(s->media);
	uint8_t buf[128 + SRTP_TX_SPARE] __attribute__((aligned(4)));
	const struct media_track *mt = media_track(s->media, track);
	uint32_t rtp = ring_rtp_at(r, (unsigned)track, ev_now_us());
	size_t cap = sizeof buf - SRTP_TX_SPARE;
	int n = bye ? rtcp_build_bye(buf, cap, mt->ssrc, rtcp_ntp_now(), rtp, t->packets, t->octets, s->w->cname)
		    : rtcp_build_sr(buf, cap, mt->ssrc, rtcp_ntp_now(), rtp, t->packets, t->octets, s->w->cname);
	if (n <= 0)
		return;
	size_t len = (size_t)n;
	if (s->srtp[track] && srtp_tx_rtcp(s->srtp[track], buf, &len) < 0) {
		s->srtp_errors++;
		return;
	}
	session_send_rtcp(s, track, buf, len);
}

void session_send_sr(struct session *s)
{
	if (s->mcast)
		return;   /* the sender reports to the group */
	struct ring *r = media_ring(s->media);
	for (int i = 0; i < media_ntracks(s->media); i++) {
		/* A track with no packet yet has no RTP clock to report. */
		if (!s->tracks[i].setup || s->tracks[i].bye_sent || !r->hdr->tracks[i].packets)
			continue;
		session_send_report(s, i, false);
		s->tracks[i].sr_sent = true;
	}
	s->last_sr_us = ev_now_us();
}

/* A track whose first packets came after PLAY gets its first SR now. */
static void session_first_sr(struct session *s)
{
	if (s->mcast)
		return;
	struct ring *r = media_ring(s->media);
	for (int i = 0; i < media_ntracks(s->media); i++)
		if (s->tracks[i].setup && !s->tracks[i].sr_sent && r->hdr->tracks[i].packets) {
			session_send_sr(s);
			return;
		}
}

static void session_eos(struct session *s, int track)
{
	struct session_track *t = &s->tracks[track];
	if (!t->setup || t->bye_sent)
		return;
	session_send_report(s, track, true);
	t->bye_sent = true;
	log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s: end of stream, RTCP BYE sent on track %d", s->id, track);
}

/* Live: a viewer too far behind, or whose socket took nothing for a
 * while, jumps to the latest key frame. */
static void session_maybe_skip(struct session *s, struct ring *r)
{
	if (!media_is_live(s->media))
		return;
	struct ring_slot slot;
	const uint8_t *d;
	bool behind = ring_lagging(r, s->cursor) ||
		      (s->stalled_since_us && ev_now_us() - s->stalled_since_us > LIVE_MAX_STALL_US);
	if (!behind && ring_peek(r, s->cursor, &slot, &d) == 0)
		behind = ev_now_us() - slot.time_us > LIVE_MAX_LAG_US;
	else if (!behind && ring_peek(r, s->cursor, &slot, &d) == -ESTALE)
		behind = true;
	if (!behind)
		return;
	uint64_t jp = ring_join_point(r);
	if (jp <= s->cursor)
		return;
	s->cursor = jp;
	s->skips++;
	log_tagged(LOG_DEBUG, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s: behind the live edge, skipped to the latest key frame", s->id);
}

static void session_stalled(struct session *s, bool stalled)
{
	if (!stalled)
		s->stalled_since_us = 0;
	else if (!s->stalled_since_us)
		s->stalled_since_us = ev_now_us();
}

static void session_account(struct session *s, struct session_track *t, size_t len)
{
	t->packets++;
	t->octets += (uint32_t)(len > 12 ? len - 12 : 0);
	s->packets_out++;
	s->bytes_out += len;
	s->w->packets_out++;
	s->w->bytes_out += len;
}

struct tcp_pkt {
	uint64_t seq;
	const uint8_t *data;
	uint16_t len;
	uint8_t track;
};

/* Per packet: a WebSocket frame header (ws connections), then the 4-byte
 * '$' header. Returns the header's length. */
static size_t tcp_frame_header(uint8_t *h, bool ws, int channel, size_t len)
{
	size_t hl = ws ? ws_frame_header(h, WS_BINARY, 4 + (uint64_t)len) : 0;
	h[hl] = '$';
	h[hl + 1] = (uint8_t)channel;
	h[hl + 2] = (uint8_t)(len >> 8);
	h[hl + 3] = (uint8_t)len;
	return hl + 4;
}

/* SRTP: packets [0, np) of a gathered batch are copied into the session's
 * buffer and protected; iovecs, headers (the frame length is the protected
 * length) and pk follow. A packet libsrtp refuses ends the batch: returns
 * how many packets are ready (0: the first was refused). */
static int tcp_protect(struct session *s, bool ws, int np, struct iovec *iov,
		       uint8_t (*hdr)[WS_MAX_HEADER + 4], uint8_t *hlen, struct tcp_pkt *pk)
{
	for (int i = 0; i < np; i++) {
		uint8_t *b = s->srtp_buf + (size_t)i * SRTP_STRIDE;
		size_t len = pk[i].len;
		if (len > SRTP_STRIDE - SRTP_TX_SPARE || !s->srtp[pk[i].track])
			return i;
		memcpy(b, pk[i].data, len);
		if (srtp_tx_rtp(s->srtp[pk[i].track], b, &len) < 0 || len > UINT16_MAX)
			return i;
		hlen[i] = (uint8_t)tcp_frame_header(hdr[i], ws, s->tracks[pk[i].track].ch_rtp, len);
		iov[2 * i] = (struct iovec){ hdr[i], hlen[i] };
		iov[2 * i + 1] = (struct iovec){ b, len };
		pk[i].data = b;
		pk[i].len = (uint16_t)len;
	}
	return np;
}

static void session_send_tcp(struct session *s)
{
	struct client *c = s->client;
	if (!c || c->dead || c->out_len)
		return;  /* client_flush() calls back once its queue is empty */
	struct ring *r = media_ring(s->media);
	for (int round = 0; round < 32; round++) {
		session_maybe_skip(s, r);
		struct iovec iov[2 * SEND_BATCH];
		uint8_t hdr[SEND_BATCH][WS_MAX_HEADER + 4];
		uint8_t hlen[SEND_BATCH];
		struct tcp_pkt pk[SEND_BATCH];
		int np = 0;
		uint64_t start = s->cursor, cur = s->cursor;
		while (np < SEND_BATCH) {
			struct ring_slot slot;
			const uint8_t *d;
			int e = ring_peek(r, cur, &slot, &d);
			if (e == -EAGAIN)
				break;
			if (e == -ESTALE) {
				if (np)
					break;
				uint64_t jp = ring_join_point(r);
				s->cursor = cur = jp > cur ? jp : ring_head(r);
				start = cur;
				s->skips++;
				continue;
			}
			if (slot.flags & RING_EOS) {
				if (np)
					break;
				if (slot.track < SOURCE_MAX_TRACKS)
					session_eos(s, slot.track);
				s->cursor = start = ++cur;
				if (c->out_len)
					return;
				continue;
			}
			if (slot.track >= SOURCE_MAX_TRACKS || !s->tracks[slot.track].setup) {
				cur++;
				if (!np)
					s->cursor = start = cur;
				continue;
			}
			uint8_t *h = hdr[np];
			hlen[np] = (uint8_t)tcp_frame_header(h, c->ws, s->tracks[slot.track].ch_rtp, slot.len);
			iov[2 * np] = (struct iovec){ h, hlen[np] };
			iov[2 * np + 1] = (struct iovec){ (void *)d, slot.len };
			pk[np].seq = cur;
			pk[np].data = d;
			pk[np].len = slot.len;
			pk[np].track = slot.track;
			np++;
			cur++;
		}
		if (!np)
			return;
		if (s->srtp_buf) {
			int ready = tcp_protect(s, c->ws, np, iov, hdr, hlen, pk);
			if (!ready) {
				/* Refused (cannot happen with in-order packets of
				 * RTP_MTU): drop it rather than send it in the clear. */
				s->srtp_errors++;
				s->cursor = pk[0].seq + 1;
				continue;
			}
			np = ready;
		}
		ssize_t n = writev(c->fd, iov, 2 * np);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				s->cursor = start;
				session_stalled(s, true);
				client_want_write(c);
				return;
			}
			log_msg(LOG_DEBUG, NULL, c->peer, "write: %s", strerror(errno));
			client_close(c);
			return;
		}
		session_stalled(s, false);
		size_t done = (size_t)n;
		for (int i = 0; i < np; i++) {
			size_t full = hlen[i] + (size_t)pk[i].len;
			struct session_track *t = &s->tracks[pk[i].track];
			if (done >= full) {
				done -= full;
				session_account(s, t, pk[i].len);
				s->cursor = pk[i].seq + 1;
				continue;
			}
			/* Partial packet: keep its tail (never more than one packet) so
			 * the byte stream stays framed; the ring may reuse the bytes. */
			if (done < hlen[i]) {
				client_queue_raw(c, hdr[i] + done, hlen[i] - done);
				client_queue_raw(c, pk[i].data, pk[i].len);
			} else {
				client_queue_raw(c, pk[i].data + (done - hlen[i]), pk[i].len - (done - hlen[i]));
			}
			session_account(s, t, pk[i].len);
			s->cursor = pk[i].seq + 1;
			session_stalled(s, true);
			client_want_write(c);
			return;
		}
		if (np < SEND_BATCH)
			return;
	}
}

/* UDP generic segmentation (UDP_SEGMENT): a run of equal-sized packets to
 * one destination (the fragments of a video frame, all MTU-sized but the
 * last) goes down as one datagram the kernel cuts up, so it is routed and
 * accounted once. w->udp_no_gso is set for good when the kernel refuses.
 * One sendmmsg, one message per run of equal-sized packets; shared by the
 * unicast sessions and the multicast sender. */
int udp_send_packets(struct worker *w, int fd, struct iovec *iov, int n)
{
	struct mmsghdr msgs[SEND_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[SEND_BATCH];
	int count[SEND_BATCH];
	int nmsg = 0;
	if (n > SEND_BATCH)
		n = SEND_BATCH;
	for (int i = 0; i < n;) {
		int j = i + 1;
		size_t seg = iov[i].iov_len, bytes = seg;
		/* Equal sizes, the run's last one may be shorter; 64 segments and
		 * 64 KiB at most per datagram. */
		while (!w->udp_no_gso && j < n && j - i < 64 && bytes + iov[j].iov_len <= 65000 &&
		       iov[j - 1].iov_len == seg && iov[j].iov_len <= seg) {
			bytes += iov[j].iov_len;
			j++;
		}
		struct msghdr *mh = &msgs[nmsg].msg_hdr;
		*mh = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = (size_t)(j - i) };
		if (j - i > 1) {
			memset(&ctl[nmsg], 0, sizeof ctl[nmsg]);
			mh->msg_control = ctl[nmsg].buf;
			mh->msg_controllen = sizeof ctl[nmsg].buf;
			struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t gso = (uint16_t)seg;
			memcpy(CMSG_DATA(cm), &gso, sizeof gso);
		}
		count[nmsg++] = j - i;
		i = j;
	}
	int sent = sendmmsg(fd, msgs, (unsigned)nmsg, MSG_DONTWAIT);
	if (sent < 0 && !w->udp_no_gso && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
		log_warn("UDP segmentation offload refused (%s): sending packet by packet", strerror(errno));
		w->udp_no_gso = true;
		return udp_send_packets(w, fd, iov, n);
	}
	int done = 0;
	for (int m = 0; m < (sent > 0 ? sent : 0); m++)
		done += count[m];
	return done;
}

/* Sends n packets on track t's socket. UDP is lossy by nature: what the
 * socket did not take is dropped and counted, never retried (the writer
 * must not wait). */
static void udp_send_track(struct session *s, int t, struct iovec *iov, int n)
{
	int done = udp_send_packets(s->w, s->tracks[t].rtp_fd, iov, n);
	for (int k = 0; k < done; k++)
		session_account(s, &s->tracks[t], iov[k].iov_len);
	s->udp_drops += (uint64_t)(n - done);
}

/* SRTP: every gathered packet (nm[t] per track) is copied into the
 * session's buffer and protected; the iovecs then point at the copies. A
 * packet libsrtp refuses is dropped and counted, never sent in the clear.
 * Equal-sized runs stay equal (each grows by the same tag), so UDP_SEGMENT
 * still applies. */
static void udp_protect(struct session *s, struct iovec (*iov)[SEND_BATCH], int *nm)
{
	int used = 0;
	for (int t = 0; t < SOURCE_MAX_TRACKS; t++) {
		int k = 0;
		for (int i = 0; i < nm[t]; i++) {
			uint8_t *b = s->srtp_buf + (size_t)used++ * SRTP_STRIDE;
			size_t len = iov[t][i].iov_len;
			if (len > SRTP_STRIDE - SRTP_TX_SPARE || !s->srtp[t]) {
				s->srtp_errors++;
				continue;
			}
			memcpy(b, iov[t][i].iov_base, len);
			if (srtp_tx_rtp(s->srtp[t], b, &len) < 0) {
				s->srtp_errors++;
				continue;
			}
			iov[t][k++] = (struct iovec){ b, len };
		}
		nm[t] = k;
	}
}

static void session_send_udp(struct session *s)
{
	struct ring *r = media_ring(s->media);
	for (int round = 0; round < 32; round++) {
		session_maybe_skip(s, r);
		struct iovec iov[SOURCE_MAX_TRACKS][SEND_BATCH];
		int nm[SOURCE_MAX_TRACKS] = { 0 };
		int total = 0;
		while (total < SEND_BATCH) {
			struct ring_slot slot;
			const uint8_t *d;
			int e = ring_peek(r, s->cursor, &slot, &d);
			if (e == -EAGAIN)
				break;
			if (e == -ESTALE) {
				if (total)
					break;
				uint64_t jp = ring_join_point(r);
				s->cursor = jp > s->cursor ? jp : ring_head(r);
				s->skips++;
				continue;
			}
			if (slot.flags & RING_EOS) {
				if (total)
					break;
				if (slot.track < SOURCE_MAX_TRACKS)
					session_eos(s, slot.track);
				s->cursor++;
				continue;
			}
			s->cursor++;
			if (slot.track >= SOURCE_MAX_TRACKS || !s->tracks[slot.track].setup ||
			    s->tracks[slot.track].rtp_fd < 0)
				continue;
			int t = slot.track, k = nm[t]++;
			iov[t][k] = (struct iovec){ (void *)d, slot.len };
			total++;
		}
		if (!total)
			return;
		if (s->srtp_buf)
			udp_protect(s, iov, nm);
		for (int t = 0; t < SOURCE_MAX_TRACKS; t++)
			if (nm[t])
				udp_send_track(s, t, iov[t], nm[t]);
		if (total < SEND_BATCH)
			return;
	}
}

void session_send(struct session *s)
{
	/* A multicast session's data is the group's: the sender sends it. */
	if (s->dead || s->state != SESSION_PLAYING || !s->media || s->mcast)
		return;
	bool tcp = false;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		if (s->tracks[i].setup && s->tracks[i].tcp)
			tcp = true;
	if (tcp)
		session_send_tcp(s);
	else
		session_send_udp(s);
	if (s->own_media)
		media_kick(s->media);
}

void sessions_notify(struct media *m, void *arg)
{
	struct worker *w = arg;
	for (struct session *s = w->sessions; s; s = s->next)
		if (s->media == m && s->state == SESSION_PLAYING)
			session_send(s);
	if (w->mcast && w->mcast->media == m)
		mcast_send(w);
}

void session_play(struct session *s)
{
	s->state = SESSION_PLAYING;
	if (s->mcast) {
		mcast_session_update(s);
		return;
	}
	session_send_sr(s);
	session_send(s);
}

/* ---------------------------------------------------------------- UDP */

static void session_on_rtcp(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct session *s = arg;
	uint8_t buf[2048];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (s->dead)
			continue;
		/* Only the client's own address counts: a spoofed RTCP packet from
		 * elsewhere neither keeps the session alive nor moves its media. */
		if (!session_from_client(s, &from))
			continue;
		int track = -1;
		for (int t = 0; t < SOURCE_MAX_TRACKS; t++)
			if (s->tracks[t].rtcp_fd == fd)
				track = t;
		if (session_rtcp_ok(s, track, buf, (size_t)n))
			s->last_seen_us = ev_now_us();
	}
}

static int udp_bind(int family, int port)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_any;
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof *a;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

int session_udp_pair(struct session *s, int slot, int family, int *rtp_fd, int *rtcp_fd, int *port_out)
{
	struct worker *w = s->w;
	int base0 = w->cfg.udp_base_port;
	int nblocks = (65535 - base0) / SESSION_PORTS;
	if (nblocks <= 0)
		return -EADDRNOTAVAIL;
	if (w->next_port_block < 0)
		w->next_port_block = (int)(ev_now_us() % (nblocks > 64 ? 64 : nblocks));
	for (int tries = 0; tries < nblocks; tries++) {
		int blk = s->port_base >= 0 && tries == 0 ? (s->port_base - base0) / SESSION_PORTS
							    : (w->next_port_block + tries) % nblocks;
		int port = base0 + blk * SESSION_PORTS + 2 * slot;
		int a = udp_bind(family, port);
		if (a < 0)
			continue;
		int b = udp_bind(family, port + 1);
		if (b < 0) {
			close(a);
			continue;
		}
		if (s->port_base < 0) {
			s->port_base = base0 + blk * SESSION_PORTS;
			w->next_port_block = (blk + 1) % nblocks;
		}
		*rtp_fd = a;
		*rtcp_fd = b;
		*port_out = port;
		return 0;
	}
	return -EADDRINUSE;
}

bool session_from_client(const struct session *s, const struct sockaddr_storage *from)
{
	if (from->ss_family == AF_INET && s->peer_addr.ss_family == AF_INET)
		return ((const struct sockaddr_in *)from)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&s->peer_addr)->sin_addr.s_addr;
	if (from->ss_family == AF_INET6 && s->peer_addr.ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)from)->sin6_addr,
			       &((const struct sockaddr_in6 *)&s->peer_addr)->sin6_addr, 16);
	return false;
}

int session_setup_udp(struct session *s, int track, const struct sockaddr_storage *peer,
		      int client_rtp, int client_rtcp)
{
	struct worker *w = s->w;
	struct session_track *t = &s->tracks[track];
	int family = peer->ss_family == AF_INET6 ? AF_INET6 : AF_INET;
	int slot = media_track(s->media, track)->type == AVMEDIA_TYPE_VIDEO ? 0 : 1;
	int a, b, port;
	int r = session_udp_pair(s, slot, family, &a, &b, &port);
	if (r < 0)
		return r;
	if (t->rtp_fd >= 0) {
		ev_del(w->loop, t->rtcp_fd);
		close(t->rtp_fd);
		close(t->rtcp_fd);
	}
	t->rtp_fd = a;
	t->rtcp_fd = b;
	t->server_port = port;
	t->rtp_dst = *peer;
	set_port(&t->rtp_dst, client_rtp);
	t->rtcp_dst = *peer;
	set_port(&t->rtcp_dst, client_rtcp);
	t->dst_len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	/* Connected: the kernel caches the route, and sendmmsg needs no address. */
	if (connect(a, (struct sockaddr *)&t->rtp_dst, t->dst_len) < 0) {
		int e = -errno;
		close(a);
		close(b);
		t->rtp_fd = t->rtcp_fd = -1;
		return e;
	}
	ev_add(w->loop, b, EPOLLIN, session_on_rtcp, s);
	t->tcp = false;
	t->setup = true;
	return 0;
}

/* ---------------------------------------------------------------- lifetime */

void session_end(struct session *s, bool send_bye)
{
	if (s->dead)
		return;
	if (send_bye && s->media && !s->mcast)
		for (int i = 0; i < media_ntracks(s->media); i++)
			if (s->tracks[i].setup && !s->tracks[i].bye_sent) {
				session_send_report(s, i, true);
				s->tracks[i].bye_sent = true;
			}
	if (s->client && s->client->session == s)
		s->client->session = NULL;
	s->client = NULL;
	s->dead = true;
	s->state = SESSION_INIT;
	if (s->mcast)
		mcast_session_update(s);   /* the last one leaving silences the group */
	if (s->own_media && s->media)
		media_pause(s->media);
	log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s ended (%llu packets, %llu bytes, %llu skips, %llu UDP drops%s)",
		s->id, (unsigned long long)s->packets_out, (unsigned long long)s->bytes_out,
		(unsigned long long)s->skips, (unsigned long long)s->udp_drops, s->srtp_buf ? ", SRTP" : "");
	if (s->srtp_errors)
		log_tagged(LOG_WARN, &(struct log_tags){ .client = s->peer, .session = s->id },
			   "session %s: %llu packets not sent because SRTP refused them", s->id,
			   (unsigned long long)s->srtp_errors);
	worker_schedule_reap(s->w);
}

void session_free(struct session *s)
{
	struct worker *w = s->w;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++) {
		if (s->tracks[i].rtcp_fd >= 0) {
			ev_del(w->loop, s->tracks[i].rtcp_fd);
			close(s->tracks[i].rtcp_fd);
		}
		if (s->tracks[i].rtp_fd >= 0)
			close(s->tracks[i].rtp_fd);
	}
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		srtp_tx_free(&s->srtp[i]);
	backchannel_free(s);
	explicit_bzero(s->talk_key, sizeof s->talk_key);
	free(s->srtp_buf);
	if (s->own_media) {
		w->bytes_in_closed += media_bytes_in(s->media);
		media_close(&s->media);
	}
	if (s->mcast)
		mcast_detach(w, s);
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	w->nsessions--;
	free(s);
}

void session_housekeeping(struct session *s, int64_t now)
{
	if (s->dead)
		return;
	if (now - s->rate_prev_us >= 1000000) {
		s->bitrate = (s->bytes_out - s->rate_prev_bytes) * 8 * 1000000 / (uint64_t)(now - s->rate_prev_us);
		s->rate_prev_bytes = s->bytes_out;
		s->rate_prev_us = now;
	}
	int64_t timeout = (int64_t)s->w->cfg.session_timeout * 1000000;
	if (now - s->last_seen_us > timeout) {
		log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s timed out (no RTSP request or RTCP for %d s)",
			s->id, s->w->cfg.session_timeout);
		struct client *c = s->client;
		session_end(s, true);
		if (c)
			client_close(c);
		return;
	}
	if (s->stalled_since_us && now - s->stalled_since_us > (int64_t)s->w->cfg.slow_viewer_timeout * 1000000) {
		log_tagged(LOG_WARN, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s: viewer stopped reading for %d s, dropped",
			s->id, s->w->cfg.slow_viewer_timeout);
		struct client *c = s->client;
		session_end(s, false);
		if (c)
			client_close(c);
		return;
	}
	if (s->state == SESSION_PLAYING)
		session_first_sr(s);
	if (s->state == SESSION_PLAYING && now - s->last_sr_us >= SR_INTERVAL_US) {
		session_send_sr(s);
		if (s->client)
			client_flush(s->client);
	}
}
