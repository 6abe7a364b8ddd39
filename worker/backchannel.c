/* backchannel.c — the worker's side of the ONVIF audio back channel.
 *
 * DESCRIBE with "Require: www.onvif.org/ver20/backchannel" gets one more
 * media section (methods.c): a=sendonly, one rtpmap per format we decode,
 * control trackID=<number of media tracks>. Its SETUP comes here: the
 * device belongs to the master (one talker per device), so the worker
 * makes a SOCK_SEQPACKET socketpair, sends one end with IPC_TALK_ACQUIRE
 * and holds the SETUP's answer (and the connection's further requests)
 * until IPC_TALK_RESULT: 200 with the Transport, or 453 (device busy),
 * 503 (ALSA refused), 551 (disabled meanwhile).
 *
 * After PLAY, each RTP packet of the talker (UDP from the client's own
 * address, or '$' frames on the back channel's interleaved channel, which
 * also covers the HTTP tunnel and WebSocket) goes to the talk process as
 * one message with its arrival time. A full socket drops the packet: the
 * worker never waits for audio. Closing the socket (the session ends)
 * ends the talk and frees the device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/log.h"
#include "talk/decode.h"
#include "worker/worker.h"

#define TALK_SLOT 3   /* the back channel's port pair in a session's block */

int backchannel_formats(struct worker *w, struct bc_format *out)
{
	const struct cfg_audio *a = &w->cfg.bc_audio;
	return bc_formats(a->codec, a->samplerate, a->channels, a->bitrate, talk_decoder_available, NULL, out);
}

static void talk_close(struct worker *w, struct session_talk *t)
{
	if (t->rtp_fd >= 0) {
		ev_del(w->loop, t->rtp_fd);
		close(t->rtp_fd);
		t->rtp_fd = -1;
	}
	if (t->rtcp_fd >= 0) {
		ev_del(w->loop, t->rtcp_fd);
		close(t->rtcp_fd);
		t->rtcp_fd = -1;
	}
	if (t->pkt_fd >= 0) {
		close(t->pkt_fd);   /* the talk process ends, the device is free */
		t->pkt_fd = -1;
		/* Said before any later SETUP of ours can ask for the device, so
		 * that one waits for it instead of getting 453. */
		if (t->request_id)
			ipc_send(w->ipc_fd, IPC_TALK_RELEASE, t->request_id, NULL, 0, -1);
	}
}

void backchannel_free(struct session *s)
{
	struct session_talk *t = s->talk;
	if (!t)
		return;
	if (t->setup || t->packets)
		log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id },
			   "back channel ended: %llu packets passed on, %llu dropped (talk process busy), "
			   "%llu sent before PLAY (ignored)",
			   (unsigned long long)t->packets, (unsigned long long)t->dropped,
			   (unsigned long long)t->early);
	if (t->srtp_errors)
		log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id },
			   "back channel: %llu SRTP packets did not authenticate (dropped)",
			   (unsigned long long)t->srtp_errors);
	talk_close(s->w, t);
	srtp_tx_free(&t->srtp);
	free(t);
	s->talk = NULL;
}

/* One packet of the talker: to the talk process, or dropped. */
static void forward(struct session *s, const uint8_t *pkt, size_t len)
{
	struct session_talk *t = s->talk;
	s->last_seen_us = ev_now_us();   /* a talker's audio keeps its session alive */
	if (!t || !t->setup || t->pkt_fd < 0)
		return;
	if (s->state != SESSION_PLAYING) {
		t->early++;   /* ONVIF: no audio before the PLAY response */
		return;
	}
	if (len < 12 || len > 2048) {
		t->dropped++;
		return;
	}
	uint8_t clear[2048 + SRTP_TX_SPARE] __attribute__((aligned(8)));
	if (t->srtp) {
		/* Authenticated and decrypted here: the talk process only ever
		 * sees RTP, and a forged packet never reaches a decoder. */
		memcpy(clear, pkt, len);
		if (srtp_rx_rtp(t->srtp, clear, &len) < 0) {
			t->srtp_errors++;
			return;
		}
		pkt = clear;
	}
	struct talk_packet_hdr h = { .arrival_us = ev_now_us() };
	struct iovec iov[2] = { { &h, sizeof h }, { (void *)pkt, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	if (sendmsg(t->pkt_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if (errno == EAGAIN || errno == ENOBUFS) {
			t->dropped++;
		} else {
			/* The talk process is gone (crashed or stopped): the device
			 * is free again, this talker is not heard any more. */
			log_tagged(LOG_WARN, &(struct log_tags){ .client = s->peer, .session = s->id },
				   "back channel: the talk process is gone (%s)", strerror(errno));
			close(t->pkt_fd);
			t->pkt_fd = -1;
		}
		return;
	}
	t->packets++;
}

static void on_udp(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct session *s = arg;
	uint8_t buf[2048];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		/* Only the client's own address may talk (no port hijacking). */
		if (s->dead || !s->talk || !session_from_client(s, &from))
			continue;
		if (fd == s->talk->rtcp_fd) {
			s->last_seen_us = ev_now_us();   /* its RTCP: keep-alive */
			continue;
		}
		if ((size_t)n > sizeof buf) {
			s->talk->dropped++;
			continue;
		}
		forward(s, buf, (size_t)n);
	}
}

bool backchannel_interleaved(struct session *s, uint8_t channel, const uint8_t *data, size_t len)
{
	struct session_talk *t = s->talk;
	if (!t || !t->tcp)
		return false;
	if (channel == t->ch_rtp) {
		forward(s, data, len);
		return true;
	}
	if (channel == t->ch_rtcp) {
		s->last_seen_us = ev_now_us();
		return true;
	}
	return false;
}

static struct client *client_by_conn(struct worker *w, uint32_t conn_id)
{
	for (struct client *c = w->clients; c; c = c->next)
		if (c->conn_id == conn_id && !c->dead)
			return c;
	return NULL;
}

static void answer_error(struct session *s, struct client *c, int status, const char *why)
{
	struct session_talk *t = s->talk;
	if (c) {
		char extra[320];
		snprintf(extra, sizeof extra, "%s", why);
		methods_reply_error(c, status, t->cseq, extra);
	}
	bool created = t->created;
	backchannel_free(s);
	if (created)
		session_end(s, false);
}

void backchannel_setup(struct client *c, const struct rtsp_request *req, struct session *s, bool created)
{
	struct worker *w = c->w;
	const char *th = rtsp_header(req, "Transport");
	struct rtsp_transport ts[8];
	int nt = th ? rtsp_parse_transports(th, ts, 8) : -EINVAL;
	int pick = -1;
	for (int i = 0; i < nt; i++) {
		if ((ts[i].profile != RTSP_PROFILE_AVP && !(s->srtp_buf && ts[i].profile == RTSP_PROFILE_SAVP)) ||
		    ts[i].mode_record)
			continue;
		if (ts[i].lower == RTSP_LOWER_TCP || (ts[i].client_port[0] > 0 && !ts[i].multicast_given)) {
			pick = i;
			break;
		}
	}
	const char *why = nt < 0 ? "missing or malformed Transport header"
			  : pick < 0 ? "the back channel takes RTP/AVP over unicast UDP or TCP"
			  : s->talk ? "the back channel of this session is already set up"
			  : NULL;
	if (why) {
		methods_reply_error(c, nt < 0 ? 400 : s->talk ? 459 : 461, req->cseq, why);
		if (created)
			session_end(s, false);
		return;
	}
	struct rtsp_transport tr = ts[pick];
	bool tcp = tr.lower == RTSP_LOWER_TCP;
	if (tcp && ((s->client && s->client != c) || (c->session && c->session != s))) {
		methods_reply_error(c, 455, req->cseq, "interleaved data of this session goes over another connection");
		if (created)
			session_end(s, false);
		return;
	}
	struct session_talk *t = calloc(1, sizeof *t);
	int sv[2] = { -1, -1 };
	if (!t || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		free(t);
		methods_reply_error(c, 500, req->cseq, "out of resources for the back channel");
		if (created)
			session_end(s, false);
		return;
	}
	/* Room for about a second of audio if the talk process lags. */
	int sz = 256 * 1024;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	s->talk = t;
	t->rtp_fd = t->rtcp_fd = -1;
	if (s->srtp_buf && srtp_tx_create(&t->srtp, s->talk_key) < 0) {
		close(sv[0]);
		close(sv[1]);
		t->pkt_fd = -1;
		answer_error(s, c, 500, "cannot set up SRTP for the back channel");
		return;
	}
	t->pkt_fd = sv[0];
	t->tcp = tcp;
	t->cseq = req->cseq;
	t->created = created;
	t->waiting_conn = c->conn_id;
	t->request_id = ++w->next_talk_request;
	snprintf(t->url, sizeof t->url, "%s", req->uri);

	struct rtsp_transport out;
	rtsp_transport_init(&out);
	out.profile = tr.profile;   /* RTP/AVP, or RTP/SAVP for an SRTP session */
	out.unicast_given = true;
	out.multicast = false;
	if (tcp) {
		int ch = tr.interleaved[0] >= 0 ? tr.interleaved[0] : 2 * TALK_SLOT;
		int ch2 = tr.interleaved[1] >= 0 ? tr.interleaved[1] : ch + 1;
		if (ch > 255 || ch2 > 255) {
			close(sv[1]);
			answer_error(s, c, 461, "bad interleaved channels");
			return;
		}
		t->ch_rtp = ch;
		t->ch_rtcp = ch2;
		out.lower = RTSP_LOWER_TCP;
		out.interleaved[0] = ch;
		out.interleaved[1] = ch2;
	} else {
		int family = s->peer_addr.ss_family == AF_INET6 ? AF_INET6 : AF_INET;
		if (session_udp_pair(s, TALK_SLOT, family, &t->rtp_fd, &t->rtcp_fd, &t->server_port) < 0) {
			close(sv[1]);
			answer_error(s, c, 503, "no free UDP server port");
			return;
		}
		ev_add(w->loop, t->rtp_fd, EPOLLIN, on_udp, s);
		ev_add(w->loop, t->rtcp_fd, EPOLLIN, on_udp, s);
		out.lower = RTSP_LOWER_UDP;
		out.client_port[0] = tr.client_port[0];
		out.client_port[1] = tr.client_port[1] >= 0 ? tr.client_port[1] : tr.client_port[0] + 1;
		out.server_port[0] = t->server_port;
		out.server_port[1] = t->server_port + 1;
	}
	rtsp_format_transport(&out, t->transport, sizeof t->transport);

	static struct ipc_talk msg;
	memset(&msg, 0, sizeof msg);
	snprintf(msg.stream, sizeof msg.stream, "%.255s", w->cfg.stream_key);
	snprintf(msg.session, sizeof msg.session, "%s", s->id);
	snprintf(msg.client, sizeof msg.client, "%s", c->peer);
	int n = backchannel_formats(w, msg.formats);
	msg.nformats = n > 0 ? (uint32_t)n : 0;
	int e = ipc_send(w->ipc_fd, IPC_TALK_ACQUIRE, t->request_id, &msg, sizeof msg, sv[1]);
	close(sv[1]);   /* the master owns its copy now */
	if (e < 0) {
		answer_error(s, c, 503, "cannot reach the master for the audio device");
		return;
	}
	t->pending = true;
	c->waiting = true;   /* pipelined requests wait for this answer */
	log_msg(LOG_DEBUG, NULL, c->peer, "session %s: back channel asks for the audio device", s->id);
}

void backchannel_result(struct worker *w, uint32_t request_id, const struct ipc_talk_result *r)
{
	struct session *s = w->sessions;
	while (s && !(s->talk && s->talk->pending && s->talk->request_id == request_id))
		s = s->next;
	if (!s)
		return;   /* the session is gone: its socket closed, the talk process ends */
	struct session_talk *t = s->talk;
	t->pending = false;
	struct client *c = client_by_conn(w, t->waiting_conn);
	if (c)
		c->waiting = false;
	if (s->dead) {
		backchannel_free(s);
	} else if (r->status != 200) {
		char why[300];
		snprintf(why, sizeof why, "back channel: %.256s", r->reason);
		answer_error(s, c, r->status, why);
	} else if (!c) {
		/* The connection that asked is gone; a TCP session went with it. */
		backchannel_free(s);
	} else {
		t->setup = true;
		if (t->tcp) {
			s->client = c;
			c->session = s;
		}
		if (s->state == SESSION_INIT)
			s->state = SESSION_READY;
		s->last_seen_us = ev_now_us();
		char hdr[512];
		int n = snprintf(hdr, sizeof hdr, "Session: %s;timeout=%d\r\nTransport: %s\r\n", s->id,
				 w->cfg.session_timeout, t->transport);
		methods_reply_ok(c, t->cseq, hdr, (size_t)n);
		log_msg(LOG_INFO, NULL, c->peer, "session %s: back channel set up over %s", s->id,
			t->tcp ? "TCP" : "UDP");
	}
	if (c && !c->dead)
		client_process(c);   /* what was pipelined behind the SETUP */
	worker_status_changed(w);
}
