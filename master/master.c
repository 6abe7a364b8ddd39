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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "master/master.h"
#include "proto/route.h"
#include "proto/rtsp.h"
#include "proto/url.h"

void master_reply(int fd, int status, int cseq, const char *extra)
{
	char buf[512];
	int n = rtsp_response_begin(buf, sizeof buf, status, cseq);
	if (n < 0)
		return;
	n += snprintf(buf + n, sizeof buf - (size_t)n, "Server: rtspd/%s\r\n%s%s\r\n", RTSPD_VERSION,
		      extra ? extra : "", status == 200 ? "" : "Connection: close\r\n");
	if (n > (int)sizeof buf)
		n = sizeof buf;
	ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		snprintf(buf, len, "[%s]:%d", ip, port);
	} else {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
		snprintf(buf, len, "%s:%d", ip, port);
	}
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
	log_msg(LOG_INFO, NULL, p->peer, "%d %s: %s", status, rtsp_reason(status), why);
	master_reply(p->fd, status, cseq, NULL);
	shutdown(p->fd, SHUT_WR);
	p->lingering = true;
	p->deadline_us = ev_now_us() + LINGER_US;
}

/* Maps a route onto a file under media_dir. 0 and the absolute path, or -ENOENT. */
static int resolve_file(struct master *m, const char *rel, char *out, size_t outlen)
{
	char joined[PATH_MAX * 2];
	snprintf(joined, sizeof joined, "%s/%s", m->media_root, rel);
	char real[PATH_MAX];
	if (!realpath(joined, real))
		return -ENOENT;
	size_t rl = strlen(m->media_root);
	/* Symlinks are followed, then the result must still be inside media_dir. */
	if (strncmp(real, m->media_root, rl) || (real[rl] != '/' && strcmp(m->media_root, "/")))
		return -EACCES;
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode) || access(real, R_OK) < 0)
		return -ENOENT;
	if (strlen(real) >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, real, strlen(real) + 1);
	return 0;
}

static void pending_route(struct pending *p)
{
	struct master *m = p->m;
	static struct rtsp_request req;
	for (;;) {
		int r = rtsp_parse_request_head((const char *)p->buf, p->len, &req);
		if (r == 0) {
			if (p->len >= FIRST_REQUEST_MAX)
				pending_refuse(p, 400, -1, "first request header larger than 8 KiB");
			return;
		}
		if (r < 0) {
			pending_refuse(p, 400, -1, r == -EMSGSIZE ? "request header too large" : "malformed request");
			return;
		}
		if (!strncmp(req.version, "HTTP/", 5)) {
			pending_refuse(p, 400, req.cseq, "RTSP over HTTP tunnelling is not supported yet");
			return;
		}
		if (req.version_major != 1) {
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
			if (req.cseq < 0) {
				pending_refuse(p, 400, -1, "request without CSeq");
				return;
			}
			if (!strcmp(req.method, "OPTIONS")) {
				/* OPTIONS on the server itself: answer and read on. */
				size_t total = (size_t)r + req.content_length;
				if (total > p->len)
					return;  /* wait for the body */
				char extra[160];
				snprintf(extra, sizeof extra, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, "
					 "GET_PARAMETER, SET_PARAMETER\r\n");
				master_reply(p->fd, 200, req.cseq, extra);
				memmove(p->buf, p->buf + total, p->len - total);
				p->len -= total;
				if (!p->len)
					return;
				continue;
			}
			pending_refuse(p, 404, req.cseq, "no stream at this URL");
			return;
		}
		char file[CFG_PATH] = "";
		if (rt.kind == SOURCE_FILE) {
			int e = resolve_file(m, rt.path, file, sizeof file);
			if (e < 0) {
				pending_refuse(p, 404, req.cseq, e == -EACCES ? "path leads outside media_dir"
									      : "no such file in media_dir");
				return;
			}
		}
		int fd = p->fd;
		ev_del(m->loop, fd);
		supervisor_dispatch(m, &rt, file, fd, p->conn_id, p->peer, p->buf, p->len);
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
	pending_route(p);
}

static void listener_on_accept(struct ev_loop *loop, int lfd, uint32_t events, void *arg)
{
	struct master *m = arg;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (m->stopping || m->npending >= MAX_PENDING) {
			master_reply(fd, 503, -1, NULL);
			close(fd);
			continue;
		}
		struct pending *p = malloc(sizeof *p);
		if (!p) {
			close(fd);
			continue;
		}
		p->m = m;
		p->fd = fd;
		p->len = 0;
		p->lingering = false;
		p->conn_id = ++m->next_conn_id;
		p->deadline_us = ev_now_us() + FIRST_REQUEST_TIMEOUT_US;
		format_peer(&ss, p->peer, sizeof p->peer);
		p->prev = NULL;
		p->next = m->pending;
		if (m->pending)
			m->pending->prev = p;
		m->pending = p;
		m->npending++;
		if (ev_add(m->loop, fd, EPOLLIN | EPOLLRDHUP, pending_on_read, p) < 0)
			pending_free(p, true);
	}
}

static int listen_on(struct master *m, const struct sockaddr *sa, socklen_t len)
{
	if (m->nlisteners >= MAX_LISTENERS)
		return -ENOSPC;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, sa, len) < 0 || listen(fd, 4096) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	m->listeners[m->nlisteners++] = fd;
	return 0;
}

void master_listen(struct master *m)
{
	int port = m->cfg.rtsp_port;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	if (m->cfg.serverip[0]) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
		hints.ai_family = m->cfg.ipv6_enable ? AF_UNSPEC : AF_INET;
		struct addrinfo *res;
		int e = getaddrinfo(m->cfg.serverip, portstr, &hints, &res);
		if (e)
			fatal("<serverip> %s: %s", m->cfg.serverip, gai_strerror(e));
		for (struct addrinfo *a = res; a; a = a->ai_next) {
			int r = listen_on(m, a->ai_addr, a->ai_addrlen);
			if (r < 0) {
				freeaddrinfo(res);
				fatal("cannot listen on %s port %d: %s", m->cfg.serverip, port, strerror(-r));
			}
		}
		freeaddrinfo(res);
	} else {
		struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		int r = listen_on(m, (struct sockaddr *)&a4, sizeof a4);
		if (r < 0)
			fatal("cannot listen on port %d: %s", port, strerror(-r));
		if (m->cfg.ipv6_enable) {
			struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
						   .sin6_addr = IN6ADDR_ANY_INIT };
			r = listen_on(m, (struct sockaddr *)&a6, sizeof a6);
			if (r < 0)
				fatal("cannot listen on [::]:%d: %s", port, strerror(-r));
		}
	}
	for (int i = 0; i < m->nlisteners; i++)
		ev_add(m->loop, m->listeners[i], EPOLLIN, listener_on_accept, m);
	log_info("listening for RTSP on %s port %d%s", m->cfg.serverip[0] ? m->cfg.serverip : "every address",
		 port, m->cfg.ipv6_enable && !m->cfg.serverip[0] ? " (IPv4 and IPv6)" : "");
}

static void master_begin_stop(struct master *m)
{
	if (m->stopping)
		return;
	m->stopping = true;
	m->stop_deadline_us = ev_now_us() + 4000000;
	for (int i = 0; i < m->nlisteners; i++) {
		ev_del(m->loop, m->listeners[i]);
		close(m->listeners[i]);
	}
	m->nlisteners = 0;
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
			master_begin_stop(m);
			break;
		case SIGHUP:
			log_warn("SIGHUP: configuration reload is not supported yet; keeping the running configuration");
			break;
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
				master_reply(p->fd, 408, -1, NULL);
			pending_free(p, true);
		}
	}
	if (m->stopping) {
		if (now > m->stop_deadline_us)
			supervisor_kill_all(m);
		if (supervisor_all_gone(m))
			ev_stop(loop);
		return 100;
	}
	supervisor_tick(m);
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
	ev_run(m->loop);
	supervisor_reap(m);
	log_info("stopped");
	return 0;
}
