/* client.c — one RTSP connection inside a worker: reads requests (and the
 * client's interleaved '$' frames), hands requests to methods.c in order,
 * and owns the output queue that keeps responses, RTCP and the tail of a
 * partly written media packet in order on the byte stream. */
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/rtcp.h"
#include "proto/ws.h"
#include "worker/worker.h"

/* Buffers start small and grow on demand up to their limit: most viewers
 * send a few hundred bytes of requests and receive no queued output, so
 * a viewer costs a few KiB, not the worst case. */
static int grow(uint8_t **buf, size_t *cap, size_t need, size_t limit)
{
	if (need <= *cap)
		return 0;
	if (need > limit)
		return -ENOBUFS;
	size_t n = *cap ? *cap : CLIENT_BUF_START;
	while (n < need)
		n *= 2;
	if (n > limit)
		n = limit;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = n;
	return 0;
}

int client_reserve_in(struct client *c, size_t need)
{
	return grow(&c->in, &c->in_cap, need, CLIENT_IN_CAP);
}

static void client_update_events(struct client *c)
{
	if (c->dead)
		return;
	uint32_t ev = EPOLLIN | EPOLLRDHUP;
	if (c->out_len)
		ev |= EPOLLOUT;
	if (c->session && c->session->stalled_since_us)
		ev |= EPOLLOUT;
	ev_mod(c->w->loop, c->fd, ev);
}

void client_want_write(struct client *c)
{
	if (!c->dead)
		ev_mod(c->w->loop, c->fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
}

static void client_on_io(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct client *c = arg;
	if (c->dead)
		return;
	if (events & EPOLLOUT) {
		client_flush(c);
		if (c->dead)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		if (c->ws) {
			ws_client_read(c);
			return;
		}
		for (;;) {
			if (c->in_len >= CLIENT_IN_CAP) {
				/* A full buffer that does not parse is a protocol error,
				 * caught by client_process; stop reading meanwhile. */
				break;
			}
			if (c->in_len == c->in_cap && grow(&c->in, &c->in_cap, c->in_len + 1, CLIENT_IN_CAP) < 0)
				break;
			ssize_t n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (n > 0) {
				c->in_len += (size_t)n;
				c->last_activity_us = ev_now_us();
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
				client_process(c);
				log_msg(LOG_DEBUG, NULL, c->peer, "connection closed by the client");
				client_close(c);
				return;
			}
			if (errno == EINTR)
				continue;
			break;
		}
		client_process(c);
	}
}

struct client *client_new(struct worker *w, int fd, const struct ipc_client *ic, const uint8_t *bytes)
{
	struct client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (ic->nbytes > CLIENT_IN_CAP || grow(&c->in, &c->in_cap, ic->nbytes ? ic->nbytes : 1, CLIENT_IN_CAP) < 0) {
		free(c->in);
		free(c);
		return NULL;
	}
	c->w = w;
	c->fd = fd;
	c->conn_id = ic->conn_id;
	snprintf(c->peer, sizeof c->peer, "%.*s", (int)sizeof ic->peer_addr, ic->peer_addr);
	/* The master's view of the TCP connection: the fd itself may be a
	 * socketpair from the TLS front. */
	c->peer_addr = ic->peer_ss;
	c->local_addr = ic->local_ss;
	c->secure = ic->flags & IPC_CLIENT_TLS;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* At most CLIENT_NOTSENT_LOWAT bytes wait unsent in the kernel: a viewer
	 * that stops reading makes our writes fail soon, so it is noticed and
	 * skipped to the live edge instead of being fed seconds of stale
	 * media, while the kernel still sizes the in-flight window itself. */
	int lowat = CLIENT_NOTSENT_LOWAT;
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
	memcpy(c->in, bytes, ic->nbytes);
	c->in_len = ic->nbytes;
	if (ic->flags & IPC_CLIENT_WS) {
		c->ws = true;
		c->ws_fragmented = ic->flags & IPC_CLIENT_WS_FRAGMENTED;
		c->ws_text = ic->flags & IPC_CLIENT_WS_TEXT;
		c->ws_utf8 = ic->ws_utf8;
		c->kind = CLIENT_RTSP;
		if (ic->raw_nbytes && ws_client_reserve(c, ic->raw_nbytes) < 0) {
			free(c->in);
			free(c);
			return NULL;
		}
		if (ic->raw_nbytes)
			memcpy(c->raw, bytes + ic->nbytes, ic->raw_nbytes);
		c->raw_len = ic->raw_nbytes;
	}
	c->last_activity_us = ev_now_us();
	if (ev_add(w->loop, fd, EPOLLIN | EPOLLRDHUP, client_on_io, c) < 0) {
		free(c->in);
		free(c->out);
		free(c);
		return NULL;
	}
	c->next = w->clients;
	if (w->clients)
		w->clients->prev = c;
	w->clients = c;
	w->nclients++;
	log_msg(LOG_DEBUG, NULL, c->peer, "connection %u accepted from the master", c->conn_id);
	if (c->ws)
		ws_client_decode(c);
	if (!c->dead)
		client_process(c);
	return c;
}

int client_queue(struct client *c, const void *data, size_t len)
{
	if (c->ws) {
		uint8_t hdr[WS_MAX_HEADER];
		int r = client_queue_raw(c, hdr, ws_frame_header(hdr, WS_BINARY, len));
		if (r < 0)
			return r;
	}
	return client_queue_raw(c, data, len);
}

int client_queue_raw(struct client *c, const void *data, size_t len)
{
	if (c->dead)
		return -EPIPE;
	if (c->out_off && c->out_off + c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	int r = grow(&c->out, &c->out_cap, c->out_len + len, CLIENT_OUT_CAP);
	if (r < 0) {
		log_msg(LOG_WARN, NULL, c->peer, "output queue full (client not reading), closing");
		client_close(c);
		return r;
	}
	bool was_empty = c->out_len == 0;
	memcpy(c->out + c->out_off + c->out_len, data, len);
	c->out_len += len;
	/* Whoever queued (a response, an RTCP report from a timer) may not
	 * flush: make sure the loop wakes us when the socket takes more. */
	if (was_empty)
		client_want_write(c);
	return 0;
}

void client_flush(struct client *c)
{
	if (c->dead)
		return;
	while (c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				client_update_events(c);
				return;
			}
			client_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->out_len -= (size_t)n;
	}
	c->out_off = 0;
	if (c->closing) {
		client_close(c);
		return;
	}
	/* The session's stall ends when media goes out again (session.c): it
	 * still has to see how long the stall was, to skip ahead. */
	if (c->session && c->session->state == SESSION_PLAYING)
		session_send(c->session);
	client_update_events(c);
}

/* A '$' frame from the client: RTCP receiver reports count as keep-alive. */
static void client_interleaved(struct client *c, uint8_t channel, const uint8_t *data, size_t len)
{
	struct session *s = c->session;
	if (!s || backchannel_interleaved(s, channel, data, len))
		return;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		if (s->tracks[i].setup && s->tracks[i].tcp && s->tracks[i].ch_rtcp == channel &&
		    session_rtcp_ok(s, i, data, len))
			s->last_seen_us = ev_now_us();
}

void client_process(struct client *c)
{
	static struct rtsp_request req;  /* 8 KiB: one per process, not per call */
	if (c->kind == CLIENT_NEW && !c->dead) {
		int t = tunnel_accept_head(c);
		if (t == 0)
			return;  /* the first line is not complete yet */
		if (t < 0)
			c->kind = CLIENT_RTSP;
	}
	if (c->kind == CLIENT_TUNNEL_POST) {
		if (c->closing)
			client_flush(c);
		else
			tunnel_feed(c);
		return;
	}
	size_t off = 0;
	while (!c->dead && !c->closing && off < c->in_len) {
		const uint8_t *p = c->in + off;
		/* A SETUP waits for the master (the back channel's device):
		 * requests behind it wait too; '$' frames still flow. */
		if (c->waiting && p[0] != '$')
			break;
		size_t avail = c->in_len - off;
		if (p[0] == '$') {
			if (avail < 4)
				break;
			size_t len = (size_t)p[2] << 8 | p[3];
			if (avail < 4 + len)
				break;
			client_interleaved(c, p[1], p + 4, len);
			off += 4 + len;
			continue;
		}
		int r = rtsp_parse_request((const char *)p, avail, &req);
		if (r == 0) {
			if (avail >= CLIENT_IN_CAP - 16) {
				methods_reply_error(c, 400, -1, "request too large");
				c->closing = true;
			}
			break;
		}
		if (r < 0) {
			methods_reply_error(c, 400, -1, r == -EMSGSIZE ? "request header too large" : "malformed request");
			c->closing = true;
			break;
		}
		methods_handle(c, &req);
		off += (size_t)r;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (c->closing && !c->dead)
		client_flush(c);
	else if (!c->dead)
		client_flush(c);
}

void client_close(struct client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	ev_del(c->w->loop, c->fd);
	tunnel_closed(c);
	if (c->session) {
		struct session *s = c->session;
		c->session = NULL;
		s->client = NULL;
		session_end(s, false);
	}
	/* UDP sessions opened on this connection live on until timeout/TEARDOWN
	 * (their client's RTCP keeps them alive). A multicast session ends
	 * with it: nothing else would tell that its viewer left, and the group
	 * would go on sending for the whole session timeout. So does a session
	 * with a back channel: the device is the only one, and a talker that
	 * vanished must not hold it for the whole timeout. */
	for (struct session *s = c->w->sessions; s; s = s->next) {
		if (s->client == c)
			s->client = NULL;
		if (s->setup_client == c)
			s->setup_client = NULL;
		if ((s->mcast || s->talk) && !s->dead && s->setup_conn == c->conn_id) {
			log_tagged(LOG_INFO, &(struct log_tags){ .client = s->peer, .session = s->id },
				   "session %s: its RTSP connection closed, %s", s->id,
				   s->mcast ? "leaving the multicast group" : "ending its back channel");
			session_end(s, false);
		}
	}
	worker_schedule_reap(c->w);
}

void client_free(struct client *c)
{
	struct worker *w = c->w;
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nclients--;
	free(c->in);
	free(c->out);
	free(c->raw);
	explicit_bzero(c->srtp_keys, sizeof c->srtp_keys);
	free(c);
}
