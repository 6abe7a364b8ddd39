/* methods.c — the RTSP methods a worker answers (RFC 2326 §10): OPTIONS,
 * DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER.
 * Responses are built in one buffer and queued on the client in request
 * order, so pipelined requests are answered in order. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "proto/route.h"
#include "proto/sdp.h"
#include "proto/url.h"
#include "worker/worker.h"

#define PUBLIC_METHODS "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

struct reply {
	char buf[32768];
	size_t len;
	bool overflow;
};

static struct reply reply;   /* one per process: requests are handled one at a time */

static void reply_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply_add(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(reply.buf + reply.len, sizeof reply.buf - reply.len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof reply.buf - reply.len)
		reply.overflow = true;
	else
		reply.len += (size_t)n;
}

static void reply_begin(int status, int cseq)
{
	reply.len = 0;
	reply.overflow = false;
	int n = rtsp_response_begin(reply.buf, sizeof reply.buf, status, cseq);
	reply.len = n > 0 ? (size_t)n : 0;
	reply_add("Server: rtspd/%s\r\n", RTSPD_VERSION);
}

static void reply_send(struct client *c, const char *content_type, const char *body, size_t body_len)
{
	if (body_len)
		reply_add("Content-Type: %s\r\nContent-Length: %zu\r\n", content_type, body_len);
	reply_add("\r\n");
	if (reply.overflow) {
		log_msg(LOG_ERROR, NULL, c->peer, "response too large, sending 500");
		reply_begin(500, -1);
		reply_add("\r\n");
	}
	client_queue(c, reply.buf, reply.len);
	if (body_len)
		client_queue(c, body, body_len);
}

void methods_reply_ok(struct client *c, int cseq, const char *headers, size_t len)
{
	reply_begin(200, cseq);
	reply_add("%.*s", (int)len, headers);
	reply_send(c, NULL, NULL, 0);
}

void methods_reply_error(struct client *c, int status, int cseq, const char *why)
{
	log_msg(status >= 500 ? LOG_WARN : LOG_INFO, NULL, c->peer, "%d %s: %s", status, rtsp_reason(status), why);
	reply_begin(status, cseq);
	if (status == 455 || status == 405)
		reply_add("Allow: %s\r\n", PUBLIC_METHODS);
	reply_send(c, NULL, NULL, 0);
}

static struct media *stream_media(struct worker *w)
{
	return w->live ? w->live : w->describe_media;
}

/* Does this URL name the stream this worker serves? */
static bool url_is_ours(struct worker *w, const struct rtsp_url *u)
{
	/* A relative control resolved the RFC 3986 way drops our path and query
	 * ("rtsp://host/trackID=0", GStreamer's first try when Content-Base has
	 * a query): accept a bare track URL on our own connection. */
	if (u->track >= 0 && !u->path[0])
		return true;
	struct route r;
	if (route_from_url(u, false, &r) < 0)
		return false;
	if (!strcmp(r.key, w->cfg.stream_key))
		return true;
	/* The same path asked live or on demand by the config's default. */
	return route_from_url(u, true, &r) == 0 && !strcmp(r.key, w->cfg.stream_key);
}

/* The URL's t= parameter (SPEC §3): 1 multicast, 0 unicast, -1 not given. */
static int url_mcast_mode(const struct rtsp_url *u)
{
	char t[16];
	if (url_query_get(u->query, "t", t, sizeof t) < 0)
		return -1;
	if (!strcasecmp(t, "multicast"))
		return 1;
	if (!strcasecmp(t, "unicast"))
		return 0;
	return -1;
}

/* Multicast is served when <multicast> is 1 (unless the URL says
 * t=unicast) or when the URL says t=multicast. */
static bool mcast_allowed(const struct worker *w, const struct rtsp_url *u)
{
	int mode = url_mcast_mode(u);
	return mode == 1 || (mode == -1 && w->cfg.multicast);
}

static void local_ip(const struct client *c, char *buf, size_t len, bool *v6)
{
	*v6 = false;
	if (c->local_addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&c->local_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, (socklen_t)len);
		} else {
			inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)len);
			*v6 = true;
		}
	} else {
		const struct sockaddr_in *a = (const void *)&c->local_addr;
		inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)len);
	}
}

/* ---------------------------------------------------------------- SRTP
 *
 * SRTP playback is asked for by the URL (?srtp=1, or ?srtsp=1). DESCRIBE
 * makes a fresh key per track, puts it in the SDP (SDES a=crypto, RTP/SAVP)
 * and leaves it with the connection; the SETUP on that connection that
 * creates the session takes the keys (the connection's copy is wiped), so
 * every session has keys of its own and a key is never used twice. A SETUP
 * creating an SRTP session on a connection that has no such DESCRIBE
 * behind it gets 455: the client cannot know keys nobody gave it.
 */

static bool url_wants_srtp(const struct rtsp_url *u)
{
	char v[16];
	return (url_query_get(u->query, "srtp", v, sizeof v) == 0 && strcmp(v, "0")) ||
	       (url_query_get(u->query, "srtsp", v, sizeof v) == 0 && strcmp(v, "0"));
}

/* The keys travel in the DESCRIBE answer: only over TLS, unless the
 * operator opted in to plain RTSP (<srtp_over_plain_rtsp>). */
static bool srtp_allowed(struct client *c, const struct rtsp_request *req)
{
	if (c->secure || c->w->cfg.srtp_over_plain_rtsp)
		return true;
	methods_reply_error(c, 403, req->cseq,
			    "SRTP refused over plain RTSP: its keys would travel in the clear "
			    "(use RTSPS, or set <srtp_over_plain_rtsp>1</srtp_over_plain_rtsp>)");
	return false;
}

/* ---------------------------------------------------------------- methods */

static void do_options(struct client *c, const struct rtsp_request *req, struct session *s)
{
	reply_begin(200, req->cseq);
	if (s)
		reply_add("Session: %s;timeout=%d\r\n", s->id, c->w->cfg.session_timeout);
	reply_add("Public: %s\r\n", PUBLIC_METHODS);
	reply_send(c, NULL, NULL, 0);
}

static void do_describe(struct client *c, const struct rtsp_request *req, const struct rtsp_url *u,
			bool backchannel)
{
	struct worker *w = c->w;
	struct media *m = stream_media(w);
	if (!m || !url_is_ours(w, u)) {
		methods_reply_error(c, 404, req->cseq, "DESCRIBE of a stream this connection does not carry");
		return;
	}
	if (media_is_live(m) && media_ended(m)) {
		methods_reply_error(c, 404, req->cseq, "the live stream has ended");
		return;
	}
	bool srtp = url_wants_srtp(u);
	if (srtp && !srtp_allowed(c, req))
		return;
	static char crypto_lines[SOURCE_MAX_TRACKS + 1][SRTP_SDES_ATTR_MAX];
	const char *crypto[SOURCE_MAX_TRACKS + 1] = { NULL };
	c->srtp_keys_ready = false;
	if (srtp) {
		for (int i = 0; i < media_ntracks(m); i++) {
			if (srtp_key_generate(c->srtp_keys[i]) < 0 ||
			    srtp_sdes_attr(c->srtp_keys[i], crypto_lines[i], sizeof crypto_lines[i]) < 0) {
				methods_reply_error(c, 500, req->cseq, "cannot make SRTP keys");
				return;
			}
			crypto[i] = crypto_lines[i];
		}
		c->srtp_keys_ready = true;
	}
	static char sdp[16384];
	char ip[64], tool[64];
	bool v6;
	local_ip(c, ip, sizeof ip, &v6);
	snprintf(tool, sizeof tool, "rtspd %s", RTSPD_VERSION);
	const char *sections[SOURCE_MAX_TRACKS + 1];
	int nsections = media_ntracks(m);
	for (int i = 0; i < nsections; i++)
		sections[i] = media_track(m, i)->sdp;
	/* The back channel (Require: www.onvif.org/ver20/backchannel): one
	 * more section, a=sendonly, control = one past the media tracks. */
	static char bc_section[2048];
	if (backchannel && url_mcast_mode(u) <= 0) {
		struct bc_format f[BC_MAX_FORMATS];
		int nf = backchannel_formats(w, f);
		if (nf <= 0 || bc_sdp_section(bc_section, sizeof bc_section, f, nf) < 0) {
			methods_reply_error(c, 500, req->cseq, "no back-channel format can be decoded");
			return;
		}
		/* With SRTP the talker encrypts too, with the key given here
		 * for that section (the connection keeps it like the others). */
		if (srtp && (srtp_key_generate(c->srtp_keys[nsections]) < 0 ||
			     srtp_sdes_attr(c->srtp_keys[nsections], crypto_lines[nsections],
					    sizeof crypto_lines[nsections]) < 0)) {
			methods_reply_error(c, 500, req->cseq, "cannot make SRTP keys");
			return;
		}
		crypto[nsections] = srtp ? crypto_lines[nsections] : NULL;
		sections[nsections++] = bc_section;
	}
	struct sdp_session ss = {
		.origin_ip = ip, .ipv6 = v6, .session_id = (unsigned)(ev_now_us() & 0x7fffffff),
		.name = w->cfg.stream_key, .tool = tool, .live = media_is_live(m), .duration = media_duration(m),
		.crypto = srtp ? crypto : NULL,
	};
	/* A ?t=multicast URL describes the group itself: a client may join it
	 * from the SDP alone. Otherwise the address is SETUP's (unicast or
	 * multicast), as before. */
	if (url_mcast_mode(u) > 0 && w->cfg.mcast_group[0] && !srtp) {
		ss.mcast_group = w->cfg.mcast_group;
		ss.mcast_ttl = w->cfg.mcast_ttl;
		ss.mcast_port = w->cfg.mcast_port;
		ss.live = true;   /* the group is one broadcast: no Range of its own */
	}
	int n = sdp_build(sdp, sizeof sdp, &ss, sections, nsections);
	explicit_bzero(crypto_lines, sizeof crypto_lines);
	if (n < 0) {
		methods_reply_error(c, 500, req->cseq, "SDP too large");
		return;
	}
	/* Content-Base: the request URL with exactly one trailing '/', so both
	 * ffmpeg's "base + '/' + control" and RFC 1808 resolution work. */
	char base[2048];
	snprintf(base, sizeof base, "%s", req->uri);
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		base[--bl] = 0;
	reply_begin(200, req->cseq);
	reply_add("Content-Base: %s/\r\n", base);
	reply_send(c, "application/sdp", sdp, (size_t)n);
}

/* Whether a UDP transport spec asks for multicast: "multicast" given last,
 * or neither given and no client_port (RFC 2326 §12.39: multicast is the
 * default; a bare client_port is how unicast clients really ask). */
static bool transport_is_multicast(const struct rtsp_transport *t)
{
	return t->lower == RTSP_LOWER_UDP && t->multicast && (t->multicast_given || t->client_port[0] < 0);
}

/* The first spec, in the client's order of preference, that we serve. */
/* srtp: the track is offered as RTP/SAVP; the client may say SAVP, or AVP
 * as ffmpeg always does (its SETUP ignores the SDP's profile). */
static int choose_transport(const struct rtsp_transport *ts, int n, bool allow_mcast, bool srtp)
{
	for (int i = 0; i < n; i++) {
		if ((ts[i].profile != RTSP_PROFILE_AVP && !srtp) || ts[i].mode_record)
			continue;
		if (ts[i].lower == RTSP_LOWER_TCP)
			return i;
		if (transport_is_multicast(&ts[i])) {
			if (allow_mcast)
				return i;
			continue;
		}
		if (ts[i].client_port[0] > 0)
			return i;
	}
	return -1;
}

/* A new session for a SETUP: its media (the live one, a multicast group's,
 * or its own for on demand) and SRTP keys. NULL when refused (answered). */
static struct session *create_session(struct client *c, const struct rtsp_request *req, bool mcast, bool srtp)
{
	struct worker *w = c->w;
	struct session *s;
	if (w->nsessions >= w->cfg.max_sessions) {
		methods_reply_error(c, 453, req->cseq, "session limit reached");
		return NULL;
	}
	s = session_new(w, c);
	if (!s) {
		methods_reply_error(c, 500, req->cseq, "out of memory");
		return NULL;
	}
	if (mcast) {
		char err[256] = "";
		int r = mcast_attach(w, s, err, sizeof err);
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, c->peer, "multicast SETUP: %s", err);
			session_end(s, false);
			methods_reply_error(c, 503, req->cseq, "the multicast group cannot be used");
			return NULL;
		}
	} else if (w->live) {
		s->media = w->live;
	} else {
		char err[256] = "";
		struct media_params mp = {
			.source_kind = (int)w->cfg.source_kind, .path = w->cfg.file_path,
			.loop_nums = w->cfg.loop_nums, .live = false,
			.ring_slots = 4096, .ring_bytes = 2 * 1024 * 1024,
		};
		if (media_open(&s->media, w->loop, &mp, sessions_notify, w, err, sizeof err) < 0) {
			log_msg(LOG_ERROR, NULL, c->peer, "cannot open the stream for a session: %s", err);
			session_end(s, false);
			methods_reply_error(c, 500, req->cseq, "cannot open the stream");
			return NULL;
		}
		s->own_media = true;
		media_set_reader(s->media, &s->cursor);
	}
	if (srtp) {
		/* The back channel's key (one past the media tracks) moves too. */
		memcpy(s->talk_key, c->srtp_keys[media_ntracks(s->media)], SRTP_KEY_LEN);
		int r = session_srtp_start(s, (const uint8_t (*)[SRTP_KEY_LEN])c->srtp_keys, media_ntracks(s->media));
		explicit_bzero(c->srtp_keys, sizeof c->srtp_keys);
		c->srtp_keys_ready = false;
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, c->peer, "cannot set up SRTP: %s", strerror(-r));
			session_end(s, false);
			methods_reply_error(c, 500, req->cseq, "cannot set up SRTP");
			return NULL;
		}
	}
	worker_status_changed(w);
	return s;
}

static void do_setup(struct client *c, const struct rtsp_request *req, const struct rtsp_url *u,
		     struct session *s)
{
	struct worker *w = c->w;
	struct media *m = s && s->media ? s->media : stream_media(w);
	if (!m || (!s && !url_is_ours(w, u))) {
		methods_reply_error(c, 404, req->cseq, "SETUP of a stream this connection does not carry");
		return;
	}
	int track = u->track;
	if (track < 0) {
		if (media_ntracks(m) != 1) {
			methods_reply_error(c, 459, req->cseq, "SETUP needs a track URL (trackID=N)");
			return;
		}
		track = 0;
	}
	if (track == media_ntracks(m) && w->cfg.backchannel) {
		/* The back channel's control URL (one past the media tracks). */
		if (s && s->mcast) {
			methods_reply_error(c, 461, req->cseq, "no back channel in a multicast session");
			return;
		}
		bool made = false;
		if (!s) {
			bool bc_srtp = url_wants_srtp(u) || (c->srtp_keys_ready && !u->path[0]);
			if (bc_srtp && (!srtp_allowed(c, req) || !c->srtp_keys_ready)) {
				if (c->secure || w->cfg.srtp_over_plain_rtsp)
					methods_reply_error(c, 455, req->cseq, "SETUP of an SRTP back channel without a "
							    "DESCRIBE giving its key on this connection");
				return;
			}
			if (!(s = create_session(c, req, false, bc_srtp)))
				return;
			made = true;
		}
		backchannel_setup(c, req, s, made);
		return;
	}
	if (track >= media_ntracks(m)) {
		methods_reply_error(c, 404, req->cseq, "no such track");
		return;
	}
	/* A bare track URL (the query lost by RFC 3986 resolution) after an
	 * SRTP DESCRIBE on this connection is that stream's. */
	bool srtp = s ? s->srtp_buf != NULL
		      : url_wants_srtp(u) || (c->srtp_keys_ready && u->track >= 0 && !u->path[0]);
	if (url_wants_srtp(u) && !srtp_allowed(c, req))
		return;
	if (s && url_wants_srtp(u) && !s->srtp_buf) {
		methods_reply_error(c, 455, req->cseq, "SETUP of an SRTP track in a plain RTP session");
		return;
	}
	if (!s && srtp && !c->srtp_keys_ready) {
		methods_reply_error(c, 455, req->cseq,
				    "SETUP of an SRTP stream without a DESCRIBE giving its keys on this connection");
		return;
	}
	const char *th = rtsp_header(req, "Transport");
	struct rtsp_transport ts[8];
	int nt = th ? rtsp_parse_transports(th, ts, 8) : -EINVAL;
	if (nt < 0) {
		methods_reply_error(c, 400, req->cseq, "missing or malformed Transport header");
		return;
	}
	/* One group serves every viewer of the stream: there is no key of one
	 * session to encrypt it with. */
	bool allow_mcast = mcast_allowed(w, u) && !srtp;
	int pick = choose_transport(ts, nt, allow_mcast, srtp);
	if (pick < 0) {
		methods_reply_error(c, 461, req->cseq, srtp
			? "no offered transport is supported (RTP/AVP or RTP/SAVP unicast UDP or TCP; SRTP is not sent "
			  "by multicast)"
			: allow_mcast
			? "no offered transport is supported (RTP/AVP unicast UDP or TCP, or multicast)"
			: "no offered transport is supported (RTP/AVP unicast UDP or TCP; multicast needs <multicast>1 "
			  "or ?t=multicast in the URL)");
		return;
	}
	struct rtsp_transport t = ts[pick];
	bool tcp = t.lower == RTSP_LOWER_TCP;
	bool mcast = transport_is_multicast(&t);
	if (s && s->mcast != mcast) {
		methods_reply_error(c, 461, req->cseq, "tracks of one session must all be multicast or all unicast");
		return;
	}
	if (s) {
		for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
			if (s->tracks[i].setup && s->tracks[i].tcp != tcp && i != track) {
				methods_reply_error(c, 461, req->cseq, "tracks of one session must share TCP or UDP");
				return;
			}
		if (tcp && s->client && s->client != c) {
			methods_reply_error(c, 455, req->cseq, "the session's interleaved data goes over another connection");
			return;
		}
	}
	if (tcp && c->session && c->session != s) {
		methods_reply_error(c, 455, req->cseq, "this connection already carries another session");
		return;
	}
	bool created = false;
	if (!s) {
		if (!(s = create_session(c, req, mcast, srtp)))
			return;
		created = true;
	}
	struct session_track *st = &s->tracks[track];
	const struct media_track *mt = media_track(s->media, track);
	struct rtsp_transport out;
	rtsp_transport_init(&out);
	out.profile = t.profile;   /* AVP from ffmpeg even for SRTP: echo what was asked */
	out.unicast_given = true;
	out.multicast = false;
	out.has_ssrc = true;
	out.ssrc = mt->ssrc;
	if (mcast) {
		/* The stream's group, whatever destination=, port= or ttl= the
		 * client asked for: the master assigned the group so that streams
		 * never share one, and media never goes where a client points it
		 * (RFC 2326 §12.39 "destination"). */
		st->tcp = false;
		st->setup = true;
		out.multicast = true;
		out.unicast_given = false;
		snprintf(out.destination, sizeof out.destination, "%s", w->cfg.mcast_group);
		out.port[0] = w->cfg.mcast_port + 2 * track;
		out.port[1] = out.port[0] + 1;
		out.ttl = w->cfg.mcast_ttl;
		out.lower = RTSP_LOWER_UDP;
	} else if (tcp) {
		int ch = t.interleaved[0] >= 0 ? t.interleaved[0] : 2 * track;
		int ch2 = t.interleaved[1] >= 0 ? t.interleaved[1] : ch + 1;
		if (ch > 255 || ch2 > 255) {
			if (created)
				session_end(s, false);
			methods_reply_error(c, 461, req->cseq, "bad interleaved channels");
			return;
		}
		st->tcp = true;
		st->ch_rtp = ch;
		st->ch_rtcp = ch2;
		st->setup = true;
		s->client = c;
		c->session = s;
		out.lower = RTSP_LOWER_TCP;
		out.interleaved[0] = ch;
		out.interleaved[1] = ch2;
	} else {
		int cp0 = t.client_port[0], cp1 = t.client_port[1] >= 0 ? t.client_port[1] : cp0 + 1;
		/* Media only ever goes to the address the RTSP request came from:
		 * a destination= naming another host is ignored (RFC 2326 §12.39). */
		int r = session_setup_udp(s, track, &c->peer_addr, cp0, cp1);
		if (r < 0) {
			if (created)
				session_end(s, false);
			methods_reply_error(c, 503, req->cseq, "no free UDP server port");
			return;
		}
		out.lower = RTSP_LOWER_UDP;
		out.client_port[0] = cp0;
		out.client_port[1] = cp1;
		out.server_port[0] = st->server_port;
		out.server_port[1] = st->server_port + 1;
	}
	snprintf(st->url, sizeof st->url, "%s", req->uri);
	if (s->state == SESSION_INIT)
		s->state = SESSION_READY;
	s->last_seen_us = ev_now_us();
	char tbuf[512];
	rtsp_format_transport(&out, tbuf, sizeof tbuf);
	reply_begin(200, req->cseq);
	reply_add("Session: %s;timeout=%d\r\n", s->id, w->cfg.session_timeout);
	reply_add("Transport: %s\r\n", tbuf);
	reply_send(c, NULL, NULL, 0);
	log_msg(LOG_INFO, NULL, c->peer, "session %s: track %d set up over %s%s", s->id, track,
		mcast ? "multicast" : tcp ? "TCP" : "UDP", s->srtp_buf ? " with SRTP" : "");
}

/* RTP-Info for each set-up track: the first packet the session will send. */
static void add_rtp_info(struct session *s)
{
	struct ring *r = media_ring(s->media);
	bool found[SOURCE_MAX_TRACKS] = { false };
	uint16_t seq[SOURCE_MAX_TRACKS] = { 0 };
	uint32_t ts[SOURCE_MAX_TRACKS] = { 0 };
	uint64_t head = ring_head(r);
	int want = 0;
	for (int i = 0; i < media_ntracks(s->media); i++)
		if (s->tracks[i].setup)
			want++;
	for (uint64_t k = s->cursor; k < head && want > 0; k++) {
		struct ring_slot slot;
		const uint8_t *d;
		if (ring_peek(r, k, &slot, &d) < 0 || (slot.flags & RING_EOS) || slot.track >= SOURCE_MAX_TRACKS)
			continue;
		int t = slot.track;
		if (!s->tracks[t].setup || found[t] || slot.len < 12)
			continue;
		found[t] = true;
		seq[t] = (uint16_t)(d[2] << 8 | d[3]);
		ts[t] = slot.rtp_ts;
		want--;
	}
	int64_t now = ev_now_us();
	const char *sep = "RTP-Info: ";
	for (int i = 0; i < media_ntracks(s->media); i++) {
		if (!s->tracks[i].setup)
			continue;
		if (!found[i]) {
			/* No packet of this track yet (a stream just started): its RTP
			 * clock is not known, so say nothing rather than guess. */
			if (!r->hdr->tracks[i].packets)
				continue;
			seq[i] = (uint16_t)r->hdr->tracks[i].next_seq;
			ts[i] = ring_rtp_at(r, (unsigned)i, now);
		}
		reply_add("%surl=%s;seq=%u;rtptime=%u", sep, s->tracks[i].url, seq[i], ts[i]);
		sep = ",";
	}
	if (sep[0] == ',')
		reply_add("\r\n");
}

static void do_play(struct client *c, const struct rtsp_request *req, struct session *s)
{
	struct worker *w = c->w;
	if (!s) {
		methods_reply_error(c, 454, req->cseq, "PLAY without a valid session");
		return;
	}
	if (s->state == SESSION_INIT) {
		methods_reply_error(c, 455, req->cseq, "PLAY before SETUP");
		return;
	}
	bool any_media = false;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		any_media |= s->tracks[i].setup;
	if (!any_media) {
		/* Only the back channel is set up (a talker, e.g. rtsp-talk): no
		 * media to start; its audio is welcome from now on. */
		s->state = SESSION_PLAYING;
		s->last_seen_us = ev_now_us();
		reply_begin(200, req->cseq);
		reply_add("Session: %s;timeout=%d\r\nRange: npt=now-\r\n", s->id, w->cfg.session_timeout);
		reply_send(c, NULL, NULL, 0);
		log_msg(LOG_INFO, NULL, c->peer, "session %s: PLAY (back channel only)", s->id);
		return;
	}
	struct media *m = s->media;
	const char *rh = rtsp_header(req, "Range");
	struct rtsp_range range;
	bool seek = false;
	if (rh && !media_is_live(m)) {
		int r = rtsp_parse_range(rh, &range);
		if (r == -ENOTSUP || (r == 0 && range.kind != RTSP_RANGE_NPT)) {
			methods_reply_error(c, 501, req->cseq, "only npt ranges can be played from files");
			return;
		}
		if (r < 0) {
			methods_reply_error(c, 400, req->cseq, "malformed Range header");
			return;
		}
		double dur = media_duration(m);
		if (!range.start_now && dur > 0 && range.start > dur) {
			methods_reply_error(c, 457, req->cseq, "Range starts after the end of the file");
			return;
		}
		seek = !range.start_now;
		/* A fresh session asked to start at 0 is there already: no seek
		 * (raw elementary streams cannot seek at all). */
		if (seek && range.start < 0.001 && s->state != SESSION_PLAYING && media_position(m) < 0.001)
			seek = false;
	}
	if (s->mcast) {
		/* RTP-Info: what the group will carry next. */
		if (s->state != SESSION_PLAYING)
			s->cursor = mcast_next_packet(w);
	} else if (media_is_live(m)) {
		if (s->state != SESSION_PLAYING)
			s->cursor = ring_join_point(media_ring(m));
	} else {
		if (seek) {
			media_pause(m);
			if (media_seek(m, range.start) < 0) {
				methods_reply_error(c, 457, req->cseq, "cannot seek there");
				return;
			}
			/* Packets made before the seek are of the old position. */
			s->cursor = ring_head(media_ring(m));
		}
		if (media_ended(m) && !seek) {
			/* Played to the end: PLAY again starts over. */
			media_seek(m, 0);
			s->cursor = ring_head(media_ring(m));
		}
		if (!media_playing(m))
			media_play(m);
	}
	s->last_seen_us = ev_now_us();
	reply_begin(200, req->cseq);
	reply_add("Session: %s;timeout=%d\r\n", s->id, w->cfg.session_timeout);
	if (media_is_live(m)) {
		reply_add("Range: npt=now-\r\n");
	} else {
		double dur = media_duration(m);
		double pos = seek ? range.start : media_position(m);
		if (dur > 0)
			reply_add("Range: npt=%.3f-%.3f\r\n", pos, dur);
		else
			reply_add("Range: npt=%.3f-\r\n", pos);
	}
	if (rtsp_header(req, "Scale"))
		reply_add("Scale: 1.000\r\n");
	add_rtp_info(s);
	reply_send(c, NULL, NULL, 0);
	log_msg(LOG_INFO, NULL, c->peer, "session %s: PLAY", s->id);
	session_play(s);
}

static void do_pause(struct client *c, const struct rtsp_request *req, struct session *s)
{
	if (!s) {
		methods_reply_error(c, 454, req->cseq, "PAUSE without a valid session");
		return;
	}
	if (s->state == SESSION_INIT) {
		methods_reply_error(c, 455, req->cseq, "PAUSE before SETUP");
		return;
	}
	if (s->own_media)
		media_pause(s->media);
	s->state = SESSION_READY;
	if (s->mcast)
		mcast_session_update(s);   /* the group stops when nobody else plays it */
	s->last_seen_us = ev_now_us();
	reply_begin(200, req->cseq);
	reply_add("Session: %s;timeout=%d\r\n", s->id, c->w->cfg.session_timeout);
	reply_send(c, NULL, NULL, 0);
}

static void do_teardown(struct client *c, const struct rtsp_request *req, struct session *s)
{
	if (!s) {
		methods_reply_error(c, 454, req->cseq, "TEARDOWN without a valid session");
		return;
	}
	reply_begin(200, req->cseq);
	reply_send(c, NULL, NULL, 0);
	log_msg(LOG_INFO, NULL, c->peer, "session %s: TEARDOWN", s->id);
	session_end(s, true);
	worker_status_changed(c->w);
}

static void do_parameter(struct client *c, const struct rtsp_request *req, struct session *s, bool set)
{
	if (req->body_len > 0) {
		/* We expose no parameters; an empty body is the keep-alive ping. */
		methods_reply_error(c, 451, req->cseq, set ? "SET_PARAMETER of an unknown parameter"
							 : "GET_PARAMETER of an unknown parameter");
		return;
	}
	reply_begin(200, req->cseq);
	if (s)
		reply_add("Session: %s;timeout=%d\r\n", s->id, c->w->cfg.session_timeout);
	reply_send(c, NULL, NULL, 0);
}

struct require_state {
	char unsupported[512];
	size_t len;
	bool backchannel_ok;         /* this worker offers the back channel */
	bool backchannel;            /* ... and the request asks for it */
};

static int collect_tag(const char *tag, size_t taglen, void *arg)
{
	struct require_state *st = arg;
	if (taglen == strlen(BC_TAG) && !strncasecmp(tag, BC_TAG, taglen)) {
		st->backchannel = true;
		if (st->backchannel_ok)
			return 0;
	}
	int n = snprintf(st->unsupported + st->len, sizeof st->unsupported - st->len, "%s%.*s",
			 st->len ? ", " : "", (int)taglen, tag);
	if (n > 0 && (size_t)n < sizeof st->unsupported - st->len)
		st->len += (size_t)n;
	return 0;
}

void methods_handle(struct client *c, const struct rtsp_request *req)
{
	struct worker *w = c->w;
	const char *method = req->method;
	if (req->cseq < 0) {
		methods_reply_error(c, 400, -1, "request without CSeq");
		return;
	}
	if (strncmp(req->version, "RTSP/", 5)) {
		methods_reply_error(c, 400, req->cseq, "not an RTSP request");
		c->closing = true;
		return;
	}
	if (req->version_major != 1) {
		methods_reply_error(c, 505, req->cseq, "only RTSP/1.0 is spoken here");
		return;
	}
	struct require_state rq = { .len = 0, .backchannel_ok = w->cfg.backchannel };
	const char *require = rtsp_header(req, "Require");
	const char *preq = rtsp_header(req, "Proxy-Require");
	if (require)
		rtsp_require_foreach(require, collect_tag, &rq);
	if (preq)
		rtsp_require_foreach(preq, collect_tag, &rq);
	if (rq.len) {
		log_msg(LOG_INFO, NULL, c->peer, "551 Option not supported: %s", rq.unsupported);
		reply_begin(551, req->cseq);
		reply_add("Unsupported: %s\r\n", rq.unsupported);
		reply_send(c, NULL, NULL, 0);
		return;
	}
	struct rtsp_url u;
	if (rtsp_url_parse(req->uri, &u) < 0) {
		methods_reply_error(c, 400, req->cseq, "malformed Request-URI");
		return;
	}
	struct session *s = NULL;
	const char *sh = rtsp_header(req, "Session");
	if (sh) {
		char id[64];
		if (rtsp_parse_session(sh, id, sizeof id) < 0 || !(s = session_find(w, id))) {
			methods_reply_error(c, 454, req->cseq, "unknown or expired session");
			return;
		}
		s->last_seen_us = ev_now_us();
	}
	log_msg(LOG_DEBUG, NULL, c->peer, "%s %s", method, req->uri);
	if (!strcmp(method, "OPTIONS"))
		do_options(c, req, s);
	else if (!strcmp(method, "DESCRIBE"))
		do_describe(c, req, &u, rq.backchannel);
	else if (!strcmp(method, "SETUP"))
		do_setup(c, req, &u, s);
	else if (!strcmp(method, "PLAY"))
		do_play(c, req, s);
	else if (!strcmp(method, "PAUSE"))
		do_pause(c, req, s);
	else if (!strcmp(method, "TEARDOWN"))
		do_teardown(c, req, s);
	else if (!strcmp(method, "GET_PARAMETER"))
		do_parameter(c, req, s, false);
	else if (!strcmp(method, "SET_PARAMETER"))
		do_parameter(c, req, s, true);
	else
		methods_reply_error(c, 501, req->cseq, "method not implemented");
}
