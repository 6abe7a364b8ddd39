/* master.c — listeners, the first request of each connection, routing.
 *
 * The master reads just enough of a new connection to know which stream it
 * wants (the first request's header, at most FIRST_REQUEST_MAX bytes within
 * FIRST_REQUEST_TIMEOUT_US), checks that the stream exists, and passes the
 * fd with the bytes already read to that stream's worker. What no worker
 * should see it answers itself: malformed requests, unknown or forbidden
 * paths (404), OPTIONS on the server itself, RTSP versions other than 1.x.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "master/master.h"
#include "proto/route.h"
#include "proto/rtsp.h"
#include "proto/url.h"
#include "proto/ws.h"

int master_load_config(const char *path, struct rtspd_config *cfg, char *err, size_t errlen)
{
	if (path && *path) {
		int r = config_load(path, cfg, err, errlen);
		if (r == 0 && (r = tls_front_check_config(cfg, err, errlen)) < 0)
			config_free(cfg);
		return r;
	}
	config_defaults(cfg);
	cfg->rtsp_port = 8554;
	return 0;
}

/* Sends bytes the master answers with, in one WebSocket binary frame when
 * the connection is one. */
static void send_answer(int fd, bool ws, const void *data, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	struct iovec iov[2] = { { hdr, 0 }, { (void *)data, len } };
	if (ws)
		iov[0].iov_len = ws_frame_header(hdr, WS_BINARY, len);
	struct msghdr mh = { .msg_iov = ws ? iov : iov + 1, .msg_iovlen = ws ? 2 : 1 };
	ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

void master_reply(int fd, bool ws, int status, int cseq, const char *extra)
{
	char buf[512];
	int n = rtsp_response_begin(buf, sizeof buf, status, cseq);
	if (n < 0)
		return;
	n += snprintf(buf + n, sizeof buf - (size_t)n, "Server: rtspd/%s\r\n%s%s\r\n", RTSPD_VERSION,
		      extra ? extra : "", status == 200 ? "" : "Connection: close\r\n");
	if (n > (int)sizeof buf)
		n = sizeof buf;
	send_answer(fd, ws, buf, (size_t)n);
}

/* A WebSocket close frame with a status code. */
static void ws_send_close(int fd, uint16_t code)
{
	uint8_t body[2] = { (uint8_t)(code >> 8), (uint8_t)code };
	uint8_t frame[WS_MAX_HEADER + 2];
	size_t h = ws_frame_header(frame, WS_CLOSE, 2);
	memcpy(frame + h, body, 2);
	ssize_t w = send(fd, frame, h + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

static void pending_free(struct pending *p, bool close_fd)
{
	struct master *m = p->m;
	ev_del(m->loop, p->fd);
	if (close_fd)
		close(p->fd);
	if (p->prev)
		p->prev->next = p->next;
	else
		m->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	m->npending--;
	free(p);
}

/* Answers and closes "lingering": the write side shuts at once, then what
 * the client still sends is read and dropped for a moment, so that closing
 * with unread input does not reset the connection before the client has
 * read our answer. */
static void pending_refuse(struct pending *p, int status, int cseq, const char *why)
{
	log_msg(LOG_INFO, NULL, p->peer, "%s%d %s: %s", p->http ? "HTTP " : "", status, rtsp_reason(status), why);
	if (p->http) {
		char buf[256];
		int n = snprintf(buf, sizeof buf, "HTTP/1.%d %d %s\r\nServer: rtspd/%s\r\nContent-Length: 0\r\n"
				 "%sConnection: close\r\n\r\n", p->http_minor, status, rtsp_reason(status), RTSPD_VERSION,
				 status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "");
		ssize_t w = send(p->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	} else {
		master_reply(p->fd, p->ws, status, cseq, NULL);
		if (p->ws)
			ws_send_close(p->fd, WS_CLOSE_NORMAL);
	}
	shutdown(p->fd, SHUT_WR);
	p->lingering = true;
	p->deadline_us = ev_now_us() + LINGER_US;
}

int master_resolve_file(const char *media_root, const char *rel, char *out, size_t outlen)
{
	char joined[PATH_MAX * 2];
	snprintf(joined, sizeof joined, "%s/%s", media_root, rel);
	char real[PATH_MAX];
	if (!realpath(joined, real))
		return -ENOENT;
	size_t rl = strlen(media_root);
	/* Symlinks are followed, then the result must still be inside media_dir. */
	if (strncmp(real, media_root, rl) || (real[rl] != '/' && strcmp(media_root, "/")))
		return -EACCES;
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode) || access(real, R_OK) < 0)
		return -ENOENT;
	if (strlen(real) >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, real, strlen(real) + 1);
	return 0;
}

/* The WebSocket handshake (RFC 6455 §4.2): 101 with the accept key and
 * the rtsp.onvif.org subprotocol; the HTTP head is consumed. -1 when the
 * request was refused (p is lingering then). */
static int pending_ws_upgrade(struct pending *p, const struct rtsp_request *req, size_t head_len)
{
	const char *key = rtsp_header(req, "sec-websocket-key");
	const char *version = rtsp_header(req, "sec-websocket-version");
	const char *proto = rtsp_header(req, "sec-websocket-protocol");
	char accept[29];
	if (strcmp(req->method, "GET") || p->http_minor < 1) {
		pending_refuse(p, 400, -1, "a WebSocket upgrade is a GET in HTTP/1.1");
		return -1;
	}
	if (!version || strcmp(version, "13")) {
		pending_refuse(p, 426, -1, "WebSocket version other than 13");
		return -1;
	}
	if (!key || ws_accept_key(key, accept) < 0) {
		pending_refuse(p, 400, -1, "WebSocket upgrade without a valid Sec-WebSocket-Key");
		return -1;
	}
	bool onvif = proto && strcasestr(proto, "rtsp.onvif.org");
	char buf[512];
	int n = snprintf(buf, sizeof buf, "HTTP/1.1 101 Switching Protocols\r\nServer: rtspd/%s\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			 RTSPD_VERSION, accept, onvif ? "Sec-WebSocket-Protocol: rtsp.onvif.org\r\n" : "");
	send_answer(p->fd, false, buf, (size_t)n);
	log_msg(LOG_INFO, NULL, p->peer, "RTSP over WebSocket: upgraded%s", onvif ? " (rtsp.onvif.org)" : "");
	memmove(p->buf, p->buf + head_len, p->len - head_len);
	p->len -= head_len;
	p->http = false;
	p->ws = true;
	p->ws_dec_len = 0;
	return 0;
}

/* Takes the complete frames out of p->buf: data payloads (unmasked) go to
 * p->ws_dec, pings are answered, a close is answered and ends the
 * connection. -1 when p was closed or refused. */
static int pending_ws_frames(struct pending *p)
{
	for (;;) {
		struct ws_frame f;
		long n = ws_parse_frame(p->buf, p->len, &f);
		if (n == 0) {
			if (p->len >= sizeof p->buf) {
				ws_send_close(p->fd, WS_CLOSE_TOO_BIG);
				pending_refuse(p, 400, -1, "WebSocket frame larger than the first request may be");
				return -1;
			}
			return 0;
		}
		/* RFC 6455 §5.4: continuations only inside a fragmented message,
		 * a new data message only outside one; a close body is 0 or >= 2
		 * bytes. The worker checks the same after the hand-off. */
		bool data = n > 0 && f.opcode < WS_CLOSE;
		const char *bad = n < 0 ? "malformed frame"
			: !f.masked ? "unmasked client frame"
			: data && (f.opcode == WS_CONTINUATION) != p->ws_fragmented ? "frame breaks the fragmentation rules"
			: f.opcode == WS_CLOSE && f.len == 1 ? "close frame with a 1-byte body"
			: NULL;
		if (bad) {
			log_msg(LOG_INFO, NULL, p->peer, "WebSocket: %s: closed", bad);
			ws_send_close(p->fd, n == -EMSGSIZE ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL);
			shutdown(p->fd, SHUT_WR);
			p->lingering = true;
			p->deadline_us = ev_now_us() + LINGER_US;
			return -1;
		}
		uint8_t *payload = p->buf + f.header_len;
		ws_unmask(payload, (size_t)f.len, f.mask, 0);
		switch (f.opcode) {
		case WS_PING: {
			uint8_t frame[WS_MAX_HEADER + 125];
			size_t h = ws_frame_header(frame, WS_PONG, f.len);
			memcpy(frame + h, payload, (size_t)f.len);
			ssize_t w = send(p->fd, frame, h + (size_t)f.len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			break;
		}
		case WS_CLOSE:
			ws_send_close(p->fd, WS_CLOSE_NORMAL);
			pending_free(p, true);
			return -1;
		case WS_PONG:
			break;
		default:
			if (f.opcode != WS_CONTINUATION) {
				p->ws_text = f.opcode == WS_TEXT;
				p->ws_utf8 = 0;
			}
			if (p->ws_text && (ws_utf8_feed(&p->ws_utf8, payload, (size_t)f.len) < 0 || (f.fin && p->ws_utf8))) {
				log_msg(LOG_INFO, NULL, p->peer, "WebSocket: text message that is not UTF-8: closed");
				ws_send_close(p->fd, WS_CLOSE_BAD_DATA);
				shutdown(p->fd, SHUT_WR);
				p->lingering = true;
				p->deadline_us = ev_now_us() + LINGER_US;
				return -1;
			}
			if (p->ws_dec_len + f.len > sizeof p->ws_dec) {
				ws_send_close(p->fd, WS_CLOSE_TOO_BIG);
				pending_refuse(p, 400, -1, "first request larger than 8 KiB");
				return -1;
			}
			memcpy(p->ws_dec + p->ws_dec_len, payload, (size_t)f.len);
			p->ws_dec_len += (size_t)f.len;
			p->ws_fragmented = !f.fin;
		}
		memmove(p->buf, p->buf + n, p->len - (size_t)n);
		p->len -= (size_t)n;
	}
}

static void pending_route(struct pending *p)
{
	struct master *m = p->m;
	static struct rtsp_request req;
	for (;;) {
		/* Inside a WebSocket the request is in the frames' payloads. */
		uint8_t *in = p->ws ? p->ws_dec : p->buf;
		size_t *inlen = p->ws ? &p->ws_dec_len : &p->len;
		int r = rtsp_parse_request_head((const char *)in, *inlen, &req);
		if (r == 0) {
			if (*inlen >= FIRST_REQUEST_MAX)
				pending_refuse(p, 400, -1, "first request header larger than 8 KiB");
			return;
		}
		if (r < 0) {
			pending_refuse(p, 400, -1, r == -EMSGSIZE ? "request header too large" : "malformed request");
			return;
		}
		if (!strncmp(req.version, "HTTP/", 5)) {
			/* RTSP over HTTP: the GET or POST half of a tunnel, routed
			 * by its URL like an RTSP request; the worker joins the two. */
			p->http = true;
			p->http_minor = req.version_minor == 1 ? 1 : 0;
			if (req.version_major != 1) {
				pending_refuse(p, 505, -1, "HTTP version not supported");
				return;
			}
			if (strcmp(req.method, "GET") && strcmp(req.method, "POST")) {
				pending_refuse(p, 405, -1, "only GET and POST open an RTSP tunnel");
				return;
			}
			const char *up = rtsp_header(&req, "upgrade");
			if (up && !strcasecmp(up, "websocket")) {
				/* RTSP over WebSocket: any path; the stream is named by
				 * the first RTSP request inside the frames. */
				if (pending_ws_upgrade(p, &req, (size_t)r) < 0 || pending_ws_frames(p) < 0)
					return;
				continue;
			}
		} else if (req.version_major != 1) {
			pending_refuse(p, 505, req.cseq, "RTSP version not supported");
			return;
		}
		struct rtsp_url u;
		if (rtsp_url_parse(req.uri, &u) < 0) {
			/* "..", control bytes, bad escapes: never mapped onto files. */
			pending_refuse(p, u.path[0] || strstr(req.uri, "..") ? 404 : 400, req.cseq,
				       "bad or forbidden Request-URI");
			return;
		}
		struct route rt;
		if (route_from_url(&u, m->cfg.file_mode == FILE_MODE_LIVE, &rt) < 0) {
			if (p->http) {
				pending_refuse(p, 404, -1, "no stream at this URL");
				return;
			}
			if (req.cseq < 0) {
				pending_refuse(p, 400, -1, "request without CSeq");
				return;
			}
			if (!strcmp(req.method, "OPTIONS")) {
				/* OPTIONS on the server itself: answer and read on. */
				size_t total = (size_t)r + req.content_length;
				if (total > *inlen)
					return;  /* wait for the body */
				char extra[160];
				snprintf(extra, sizeof extra, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, "
					 "GET_PARAMETER, SET_PARAMETER\r\n");
				master_reply(p->fd, p->ws, 200, req.cseq, extra);
				memmove(in, in + total, *inlen - total);
				*inlen -= total;
				if (!*inlen)
					return;
				continue;
			}
			pending_refuse(p, 404, req.cseq, "no stream at this URL");
			return;
		}
		char file[CFG_PATH] = "";
		if (rt.kind == SOURCE_FILE) {
			int e = master_resolve_file(m->media_root, rt.path, file, sizeof file);
			if (e < 0) {
				pending_refuse(p, 404, req.cseq, e == -EACCES ? "path leads outside media_dir"
									      : "no such file in media_dir");
				return;
			}
		}
		int fd = p->fd;
		ev_del(m->loop, fd);
		struct ipc_client ic = { .conn_id = p->conn_id, .peer_ss = p->peer_ss, .local_ss = p->local_ss,
					 .flags = p->tls ? IPC_CLIENT_TLS : 0 };
		snprintf(ic.peer_addr, sizeof ic.peer_addr, "%s", p->peer);
		if (p->ws) {
			ic.flags |= IPC_CLIENT_WS | (p->ws_fragmented ? IPC_CLIENT_WS_FRAGMENTED : 0) |
				    (p->ws_fragmented && p->ws_text ? IPC_CLIENT_WS_TEXT : 0);
			ic.ws_utf8 = p->ws_utf8;
			supervisor_dispatch(m, &rt, file, fd, &ic, p->ws_dec, p->ws_dec_len, p->buf, p->len);
		} else {
			supervisor_dispatch(m, &rt, file, fd, &ic, p->buf, p->len, NULL, 0);
		}
		pending_free(p, false);
		return;
	}
}

static void pending_on_read(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct pending *p = arg;
	if (p->lingering) {
		char sink[4096];
		ssize_t n;
		while ((n = recv(fd, sink, sizeof sink, MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			pending_free(p, true);
		return;
	}
	ssize_t n = recv(fd, p->buf + p->len, sizeof p->buf - p->len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		pending_free(p, true);
		return;
	}
	if (n < 0)
		return;
	p->len += (size_t)n;
	if (p->ws && pending_ws_frames(p) < 0)
		return;
	pending_route(p);
}

int master_take_connection(struct master *m, int fd, const struct sockaddr_storage *peer,
			   const struct sockaddr_storage *local, bool tls)
{
	if (m->stopping || m->npending >= MAX_PENDING) {
		master_reply(fd, false, 503, -1, NULL);
		close(fd);
		return -EAGAIN;
	}
	struct pending *p = calloc(1, sizeof *p);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	p->m = m;
	p->fd = fd;
	p->tls = tls;
	p->peer_ss = *peer;
	p->local_ss = *local;
	p->conn_id = ++m->next_conn_id;
	p->deadline_us = ev_now_us() + FIRST_REQUEST_TIMEOUT_US;
	addr_format(peer, p->peer, sizeof p->peer);
	p->next = m->pending;
	if (m->pending)
		m->pending->prev = p;
	m->pending = p;
	m->npending++;
	if (ev_add(m->loop, fd, EPOLLIN | EPOLLRDHUP, pending_on_read, p) < 0) {
		pending_free(p, true);
		return -EIO;
	}
	/* Bytes may already be waiting (the TLS front writes the first
	 * request as soon as it has decrypted it). */
	return 0;
}

static int listener_tls_kind(const struct master *m, int fd)
{
	for (int i = 0; i < m->nlisteners; i++)
		if (m->listeners[i].fd == fd)
			return m->listeners[i].tls_kind;
	return 0;
}

static void listener_on_accept(struct ev_loop *loop, int lfd, uint32_t events, void *arg)
{
	struct master *m = arg;
	int tls_kind = listener_tls_kind(m, lfd);
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss, local = { 0 };
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		sl = sizeof local;
		getsockname(fd, (struct sockaddr *)&local, &sl);
		if (tls_kind)
			tls_front_hand_off(m, fd, tls_kind, &ss, &local);
		else
			master_take_connection(m, fd, &ss, &local, false);
	}
}

/* Appends the addresses for one port: serverip (all its addresses), or
 * every IPv4 address and, with ipv6_enable, every IPv6 one. */
static int port_addrs(const struct rtspd_config *cfg, int port, struct listener *out, int n, int max, char *err,
		      size_t errlen)
{
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	if (cfg->serverip[0]) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
		hints.ai_family = cfg->ipv6_enable ? AF_UNSPEC : AF_INET;
		struct addrinfo *res;
		int e = getaddrinfo(cfg->serverip, portstr, &hints, &res);
		if (e) {
			snprintf(err, errlen, "<serverip> %s: %s", cfg->serverip, gai_strerror(e));
			return -EINVAL;
		}
		for (struct addrinfo *a = res; a && n < max; a = a->ai_next) {
			memset(&out[n], 0, sizeof out[n]);
			memcpy(&out[n].addr, a->ai_addr, a->ai_addrlen);
			out[n].addrlen = a->ai_addrlen;
			out[n].fd = -1;
			n++;
		}
		freeaddrinfo(res);
		return n;
	}
	if (n < max) {
		struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		memset(&out[n], 0, sizeof out[n]);
		memcpy(&out[n].addr, &a4, sizeof a4);
		out[n].addrlen = sizeof a4;
		out[n++].fd = -1;
	}
	if (cfg->ipv6_enable && n < max) {
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
					   .sin6_addr = IN6ADDR_ANY_INIT };
		memset(&out[n], 0, sizeof out[n]);
		memcpy(&out[n].addr, &a6, sizeof a6);
		out[n].addrlen = sizeof a6;
		out[n++].fd = -1;
	}
	return n;
}

/* The addresses cfg wants listeners on: the RTSP port, and the HTTP port
 * when RTSP over HTTP is on (the tunnel is also accepted on the RTSP port
 * itself: ffmpeg and GStreamer send it to the URL's port). Returns how
 * many, or -errno with err. */
static int listen_addrs(const struct rtspd_config *cfg, struct listener *out, int max, char *err, size_t errlen)
{
	int n = port_addrs(cfg, cfg->rtsp_port, out, 0, max, err, errlen);
	if (n >= 0 && cfg->rtsp_over_http && cfg->http_port != cfg->rtsp_port)
		n = port_addrs(cfg, cfg->http_port, out, n, max, err, errlen);
	/* TLS ports: what they speak inside is routed like the RTSP port
	 * (RTSP, the HTTP tunnel, WebSocket); the kind picks the certificate. */
	int first = n;
	if (n >= 0 && cfg->rtsps_enable)
		n = port_addrs(cfg, cfg->rtsps_port, out, n, max, err, errlen);
	for (int i = first; i >= 0 && i < n; i++)
		out[i].tls_kind = TLS_RTSPS;
	first = n;
	if (n >= 0 && cfg->rtsp_over_https)
		n = port_addrs(cfg, cfg->https_port, out, n, max, err, errlen);
	for (int i = first; i >= 0 && i < n; i++)
		out[i].tls_kind = TLS_HTTPS;
	return n;
}

static int listen_on(const struct listener *l)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, sa, l->addrlen) < 0 || listen(fd, 4096) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void listener_name(const struct listener *l, char *buf, size_t len)
{
	addr_format(&l->addr, buf, len);
}

int master_listeners_prepare(struct master *m, const struct rtspd_config *cfg, struct listener *out, int *nout,
			     char *err, size_t errlen)
{
	int n = listen_addrs(cfg, out, MAX_LISTENERS, err, errlen);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		/* A listener we already have on that address is kept as it is:
		 * rebinding it would fail while the old one is open. */
		for (int j = 0; j < m->nlisteners; j++)
			if (m->listeners[j].addrlen == out[i].addrlen &&
			    !memcmp(&m->listeners[j].addr, &out[i].addr, out[i].addrlen))
				out[i].fd = m->listeners[j].fd;
		if (out[i].fd >= 0)
			continue;
		int fd = listen_on(&out[i]);
		if (fd < 0) {
			char name[80];
			listener_name(&out[i], name, sizeof name);
			snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(-fd));
			master_listeners_abort(m, out, i);
			return fd;
		}
		out[i].fd = fd;
	}
	*nout = n;
	return 0;
}

static bool listener_is_current(const struct master *m, int fd)
{
	for (int j = 0; j < m->nlisteners; j++)
		if (m->listeners[j].fd == fd)
			return true;
	return false;
}

void master_listeners_abort(struct master *m, struct listener *out, int n)
{
	for (int i = 0; i < n; i++)
		if (out[i].fd >= 0 && !listener_is_current(m, out[i].fd))
			close(out[i].fd);
}

void master_listeners_commit(struct master *m, const struct listener *out, int n)
{
	for (int j = 0; j < m->nlisteners; j++) {
		bool kept = false;
		for (int i = 0; i < n; i++)
			kept |= out[i].fd == m->listeners[j].fd;
		if (kept)
			continue;
		char name[80];
		listener_name(&m->listeners[j], name, sizeof name);
		log_info("no longer listening on %s", name);
		ev_del(m->loop, m->listeners[j].fd);
		close(m->listeners[j].fd);
	}
	for (int i = 0; i < n; i++) {
		if (listener_is_current(m, out[i].fd))
			continue;
		char name[80];
		listener_name(&out[i], name, sizeof name);
		ev_add(m->loop, out[i].fd, EPOLLIN, listener_on_accept, m);
		log_info("listening for %s on %s", out[i].tls_kind == TLS_RTSPS ? "RTSPS"
						   : out[i].tls_kind == TLS_HTTPS ? "RTSP over HTTPS" : "RTSP", name);
	}
	if (n > 0)
		memcpy(m->listeners, out, sizeof *out * (size_t)n);
	m->nlisteners = n;
}

void master_listen(struct master *m)
{
	struct listener l[MAX_LISTENERS];
	int n = 0;
	char err[256];
	if (master_listeners_prepare(m, &m->cfg, l, &n, err, sizeof err) < 0)
		fatal("%s", err);
	master_listeners_commit(m, l, n);
	tls_front_start(m);
}

void master_stop(struct master *m)
{
	if (m->stopping)
		return;
	m->stopping = true;
	m->stop_deadline_us = ev_now_us() + 4000000;
	service_stopping(m);
	master_listeners_commit(m, NULL, 0);
	control_close(m);
	while (m->pending)
		pending_free(m->pending, true);
	supervisor_stop_all(m);
	if (supervisor_all_gone(m))
		ev_stop(m->loop);
}

static void master_on_signal(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct master *m = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			supervisor_reap(m);
			if (m->stopping && supervisor_all_gone(m))
				ev_stop(loop);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("signal %s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			master_stop(m);
			break;
		case SIGHUP: {
			log_info("SIGHUP: reloading the configuration");
			struct strbuf report = { 0 };
			master_reload(m, &report);
			strbuf_free(&report);
			break;
		}
		}
	}
}

static int64_t master_tick(struct ev_loop *loop, long long id, void *arg)
{
	struct master *m = arg;
	int64_t now = ev_now_us();
	for (struct pending *p = m->pending, *next; p; p = next) {
		next = p->next;
		if (now > p->deadline_us && p->lingering) {
			pending_free(p, true);
		} else if (now > p->deadline_us) {
			log_msg(LOG_INFO, NULL, p->peer, "no complete request within 10 s: closed");
			if (p->len)
				master_reply(p->fd, p->ws, 408, -1, NULL);
			pending_free(p, true);
		}
	}
	control_tick(m);
	if (m->stopping) {
		if (now > m->stop_deadline_us)
			supervisor_kill_all(m);
		if (supervisor_all_gone(m))
			ev_stop(loop);
		return 100;
	}
	supervisor_tick(m);
	service_status(m);
	return 500;
}

int master_run(struct master *m)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	m->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->signal_fd < 0)
		fatal("signalfd: %s", strerror(errno));
	ev_add(m->loop, m->signal_fd, EPOLLIN, master_on_signal, m);
	ev_timer_add(m->loop, 500, master_tick, m);
	service_init(m);
	service_ready(m);
	ev_run(m->loop);
	supervisor_reap(m);
	control_free_all(m);
	control_close(m);
	log_info("stopped");
	return 0;
}
