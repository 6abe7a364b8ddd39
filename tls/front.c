/* front.c — the TLS front process: handshakes and relays (see tls.h).
 *
 * Each connection is a TLS socket (non-blocking, driven by OpenSSL) and,
 * after the handshake, our end of a socketpair whose other end the master
 * routes like a plain client. Two bounded buffers (16 and 4 KiB) move
 * bytes:
 *   up:   TLS -> plain (requests, RTCP, back-channel audio)
 *   down: plain -> TLS (responses and media)
 * A full buffer stops reading its source, so back-pressure goes all the
 * way: a viewer that stops reading fills its TCP socket, then "down", then
 * the socketpair, and the worker sees a slow viewer exactly as it would on
 * a plain TCP connection (skips to the next key frame, drops it later).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/addr.h"
#include "common/ev.h"
#include "common/ipc.h"
#include "common/log.h"
#include "tls/tls.h"

#define TLS_BUF 16384         /* plain -> TLS: one TLS record of plaintext */
#define UP_BUF 4096           /* TLS -> plain: requests and RTCP, little and seldom */
#define TICK_MS 250

struct tls_front;

struct tls_conn {
	struct tls_conn *next, *prev;
	struct tls_front *tf;
	int fd;                      /* the client's TCP socket */
	int plain;                   /* our end of the socketpair; -1 during the handshake */
	SSL *ssl;
	struct ipc_tls_conn info;
	char peer[64];
	bool handshaking;
	int64_t deadline_us;         /* handshake deadline */
	bool tls_eof, plain_eof;
	bool tls_want_write;         /* the last SSL call needs the socket writable */
	uint8_t *up, *down;          /* UP_BUF, TLS_BUF */
	size_t up_off, up_len, down_off, down_len;
	bool dead;
};

struct tls_front {
	struct ev_loop *loop;
	int ipc_fd;
	SSL_CTX *ctx[3];             /* by enum tls_kind */
	int handshake_timeout_ms;
	bool configured;
	bool draining;               /* exit when the last connection is gone */
	struct tls_conn *conns;
	int nconns;
	uint64_t handshakes, handshake_failures;
};

static void conn_free(struct tls_conn *c)
{
	struct tls_front *tf = c->tf;
	ev_del(tf->loop, c->fd);
	if (c->plain >= 0) {
		ev_del(tf->loop, c->plain);
		close(c->plain);
	}
	SSL_free(c->ssl);
	close(c->fd);
	free(c->up);
	free(c->down);
	if (c->prev)
		c->prev->next = c->next;
	else
		tf->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tf->nconns--;
	free(c);
	if (tf->draining && !tf->nconns)
		ev_stop(tf->loop);
}

/* Why the last SSL call failed, for the log; clears OpenSSL's queue. */
static const char *ssl_reason(char *buf, size_t len, int ssl_err)
{
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else if (ssl_err == SSL_ERROR_SYSCALL)
		snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed");
	else
		snprintf(buf, len, "SSL error %d", ssl_err);
	ERR_clear_error();
	return buf;
}

static void conn_on_tls(struct ev_loop *loop, int fd, uint32_t events, void *arg);
static void conn_on_plain(struct ev_loop *loop, int fd, uint32_t events, void *arg);

/* The handshake is done: the plain end goes to the master, the relay starts. */
static int conn_established(struct tls_conn *c)
{
	struct tls_front *tf = c->tf;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		log_msg(LOG_WARN, NULL, c->peer, "TLS: socketpair: %s", strerror(errno));
		return -1;
	}
	c->up = malloc(UP_BUF);
	c->down = malloc(TLS_BUF);
	int e = c->up && c->down ? ipc_send(tf->ipc_fd, IPC_TLS_PLAIN, c->info.conn_id, &c->info, sizeof c->info, sv[1])
				 : -ENOMEM;
	close(sv[1]);   /* the master owns its copy now (or nobody does) */
	if (e < 0) {
		log_msg(LOG_WARN, NULL, c->peer, "TLS: cannot hand the connection to the master: %s", strerror(-e));
		close(sv[0]);
		return -1;
	}
	c->plain = sv[0];
	c->handshaking = false;
	tf->handshakes++;
	if (ev_add(tf->loop, c->plain, EPOLLIN, conn_on_plain, c) < 0)
		return -1;
	log_msg(LOG_DEBUG, NULL, c->peer, "TLS: %s %s established", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	return 0;
}

/* Moves what can move without blocking, in both directions, then sets
 * which readiness of each fd would let more move. -1: the connection is
 * over. */
static int conn_pump(struct tls_conn *c)
{
	char why[256];
	c->tls_want_write = false;
	if (c->handshaking) {
		ERR_clear_error();
		int r = SSL_accept(c->ssl);
		if (r != 1) {
			int se = SSL_get_error(c->ssl, r);
			if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
				c->tls_want_write = se == SSL_ERROR_WANT_WRITE;
				return ev_mod(c->tf->loop, c->fd, c->tls_want_write ? EPOLLOUT : EPOLLIN);
			}
			c->tf->handshake_failures++;
			log_msg(LOG_INFO, NULL, c->peer, "TLS handshake failed: %s", ssl_reason(why, sizeof why, se));
			return -1;
		}
		if (conn_established(c) < 0)
			return -1;
	}
	bool progress;
	do {
		progress = false;
		/* TLS -> up */
		while (!c->tls_eof && c->up_len < UP_BUF) {
			ERR_clear_error();
			int n = SSL_read(c->ssl, c->up + c->up_len, (int)(UP_BUF - c->up_len));
			if (n > 0) {
				c->up_len += (size_t)n;
				progress = true;
				continue;
			}
			int se = SSL_get_error(c->ssl, n);
			if (se == SSL_ERROR_WANT_WRITE)
				c->tls_want_write = true;
			else if (se == SSL_ERROR_ZERO_RETURN)
				c->tls_eof = true;
			else if (se != SSL_ERROR_WANT_READ) {
				if (se != SSL_ERROR_SYSCALL || ERR_peek_error())
					log_msg(LOG_DEBUG, NULL, c->peer, "TLS read: %s", ssl_reason(why, sizeof why, se));
				ERR_clear_error();
				c->tls_eof = true;
			}
			break;
		}
		/* up -> plain */
		while (c->up_off < c->up_len) {
			ssize_t w = send(c->plain, c->up + c->up_off, c->up_len - c->up_off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;   /* the worker closed */
			}
			c->up_off += (size_t)w;
			progress = true;
		}
		if (c->up_off == c->up_len)
			c->up_off = c->up_len = 0;
		/* plain -> down */
		if (!c->down_len && !c->plain_eof) {
			ssize_t n = recv(c->plain, c->down, TLS_BUF, MSG_DONTWAIT);
			if (n > 0) {
				c->down_len = (size_t)n;
				c->down_off = 0;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				c->plain_eof = true;
			}
		}
		/* down -> TLS */
		while (c->down_off < c->down_len) {
			ERR_clear_error();
			int n = SSL_write(c->ssl, c->down + c->down_off, (int)(c->down_len - c->down_off));
			if (n > 0) {
				c->down_off += (size_t)n;
				progress = true;
				continue;
			}
			int se = SSL_get_error(c->ssl, n);
			if (se == SSL_ERROR_WANT_WRITE) {
				c->tls_want_write = true;
				break;
			}
			if (se == SSL_ERROR_WANT_READ)
				break;
			ERR_clear_error();
			return -1;   /* the client is gone */
		}
		if (c->down_off == c->down_len)
			c->down_off = c->down_len = 0;
	} while (progress);

	/* The client ended: what it sent before is delivered, then the worker
	 * sees the end. The worker ended: what it sent is delivered, then the
	 * client gets close_notify. */
	if (c->tls_eof && !c->up_len)
		return -1;
	if (c->plain_eof && !c->down_len) {
		SSL_shutdown(c->ssl);
		return -1;
	}
	/* A side that has ended is taken out of the loop: epoll would report
	 * its hang-up over and over while the other side drains. */
	struct ev_loop *loop = c->tf->loop;
	if (c->plain_eof)
		ev_del(loop, c->plain);
	else if (ev_mod(loop, c->plain, (!c->down_len ? EPOLLIN : 0) | (c->up_len ? EPOLLOUT : 0)) < 0)
		return -1;
	if (c->tls_eof && !c->tls_want_write)
		ev_del(loop, c->fd);
	else if (ev_mod(loop, c->fd, (!c->tls_eof && c->up_len < UP_BUF ? EPOLLIN : 0) |
					     (c->tls_want_write ? EPOLLOUT : 0)) < 0)
		return -1;
	return 0;
}

static void conn_on_tls(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct tls_conn *c = arg;
	if (conn_pump(c) < 0)
		conn_free(c);
}

static void conn_on_plain(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct tls_conn *c = arg;
	if (conn_pump(c) < 0)
		conn_free(c);
}

static void front_take_conn(struct tls_front *tf, const struct ipc_tls_conn *info, int fd)
{
	SSL_CTX *ctx = info->kind < 3 ? tf->ctx[info->kind] : NULL;
	struct tls_conn *c = ctx ? calloc(1, sizeof *c) : NULL;
	if (!c) {
		close(fd);
		return;
	}
	c->tf = tf;
	c->fd = fd;
	c->plain = -1;
	c->info = *info;
	c->handshaking = true;
	c->deadline_us = ev_now_us() + (int64_t)tf->handshake_timeout_ms * 1000;
	addr_format(&info->peer, c->peer, sizeof c->peer);
	/* As the worker sets on plain connections: no Nagle delay on
	 * responses, and little unsent data queued in the kernel so that a
	 * stalled viewer pushes back to the worker soon (see the top). */
	int one = 1, lowat = 128 * 1024;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
		SSL_free(c->ssl);
		close(fd);
		free(c);
		return;
	}
	c->next = tf->conns;
	if (tf->conns)
		tf->conns->prev = c;
	tf->conns = c;
	tf->nconns++;
	if (ev_add(tf->loop, fd, EPOLLIN, conn_on_tls, c) < 0 || conn_pump(c) < 0)
		conn_free(c);
}

static int front_configure(struct tls_front *tf, const struct ipc_tls_config *tc)
{
	log_set_level(tc->log_enable ? tc->log_level : LOG_FATAL);
	tf->handshake_timeout_ms = tc->handshake_timeout_ms > 0 ? tc->handshake_timeout_ms : 10000;
	const char *files[3][2] = { { NULL, NULL }, { tc->rtsps_cert, tc->rtsps_key }, { tc->https_cert, tc->https_key } };
	for (int k = TLS_RTSPS; k <= TLS_HTTPS; k++) {
		if (!files[k][0][0])
			continue;
		char err[512];
		tf->ctx[k] = tls_server_ctx_new(files[k][0], files[k][1], err, sizeof err);
		if (!tf->ctx[k]) {
			log_error("%s", err);
			return -1;
		}
	}
	tf->configured = true;
	return 0;
}

static void front_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct tls_front *tf = arg;
	static uint8_t buf[IPC_MAX_PAYLOAD];
	for (;;) {
		struct ipc_hdr hdr;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, buf, sizeof buf, &rfd);
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO) {
			log_warn("malformed IPC message dropped");
			continue;
		}
		if (n < 0) {
			/* The master is gone: nothing can be routed any more. */
			ev_stop(loop);
			return;
		}
		switch (hdr.type) {
		case IPC_TLS_CONFIG:
			if ((size_t)n != sizeof(struct ipc_tls_config) || tf->configured ||
			    front_configure(tf, (const void *)buf) < 0) {
				log_error("cannot configure TLS: exiting");
				ev_stop(loop);
			}
			break;
		case IPC_TLS_CONN:
			if ((size_t)n == sizeof(struct ipc_tls_conn) && rfd >= 0 && tf->configured && !tf->draining) {
				front_take_conn(tf, (const void *)buf, rfd);
				rfd = -1;
			}
			break;
		case IPC_LOG_LEVEL:
			if (n == sizeof(int32_t)) {
				int32_t l;
				memcpy(&l, buf, sizeof l);
				log_set_level(l);
			}
			break;
		case IPC_SHUTDOWN: {
			int32_t graceful = 0;
			if (n == sizeof graceful)
				memcpy(&graceful, buf, sizeof graceful);
			tf->draining = true;
			if (!graceful || !tf->nconns)
				ev_stop(loop);
			break;
		}
		default:
			log_warn("unexpected IPC %s", ipc_type_name(hdr.type));
		}
		if (rfd >= 0)
			close(rfd);
	}
}

static int64_t front_tick(struct ev_loop *loop, long long id, void *arg)
{
	struct tls_front *tf = arg;
	int64_t now = ev_now_us();
	for (struct tls_conn *c = tf->conns, *next; c; c = next) {
		next = c->next;
		if (c->handshaking && now > c->deadline_us) {
			tf->handshake_failures++;
			log_msg(LOG_INFO, NULL, c->peer, "TLS handshake not complete within %d ms: closed",
				tf->handshake_timeout_ms);
			conn_free(c);
		}
	}
	return TICK_MS;
}

static void front_on_signal(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			ev_stop(loop);
}

int tls_main(int ipc_fd)
{
	struct tls_front tf = { .ipc_fd = ipc_fd, .handshake_timeout_ms = 10000 };
	log_init("tls", LOG_INFO, true);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	tf.loop = ev_create();
	if (!tf.loop || sfd < 0)
		return 1;
	ev_add(tf.loop, ipc_fd, EPOLLIN, front_on_ipc, &tf);
	ev_add(tf.loop, sfd, EPOLLIN, front_on_signal, &tf);
	ev_timer_add(tf.loop, TICK_MS, front_tick, &tf);
	ev_run(tf.loop);
	while (tf.conns)
		conn_free(tf.conns);
	for (int k = 0; k < 3; k++)
		SSL_CTX_free(tf.ctx[k]);
	ev_del(tf.loop, ipc_fd);
	ev_del(tf.loop, sfd);
	close(sfd);
	close(ipc_fd);
	ev_destroy(tf.loop);
	return tf.configured ? 0 : 2;
}
