/* tunnel.c — RTSP over HTTP (the QuickTime tunnel) inside a worker.
 *
 * A tunnel is two connections joined by their x-sessioncookie: the client
 * GETs a channel for everything the server sends, and POSTs a body of
 * base64-encoded requests. The master routes both halves by their URL, so
 * both arrive in the stream's worker, in either order and on different
 * accepts. The GET is answered (echoing its HTTP version) and becomes the
 * RTSP client: responses and interleaved media go out on it raw. The
 * POST is never answered; what it carries is decoded (docs/PROTOCOL
 * pitfalls in proto/base64.h: split groups, per-message padding,
 * whitespace, raw '$' frames) into the GET's input and parsed there. A
 * later POST with the same cookie replaces the input side; a POST whose GET
 * does not come within TUNNEL_PAIR_TIMEOUT_US is closed. Closing the GET
 * ends the tunnel (and its session); closing the POST does not.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "proto/rtsp.h"
#include "worker/worker.h"

#define TUNNEL_PAIR_TIMEOUT_US 10000000

static bool valid_cookie(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= TUNNEL_COOKIE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void http_refuse(struct client *c, const struct rtsp_request *req, int status, const char *why)
{
	char buf[256];
	int minor = req && req->version_major == 1 ? req->version_minor : 0;
	log_msg(LOG_INFO, NULL, c->peer, "HTTP %d: %s", status, why);
	int n = snprintf(buf, sizeof buf, "HTTP/1.%d %d %s\r\nServer: rtspd/%s\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n", minor, status, rtsp_reason(status), RTSPD_VERSION);
	client_queue(c, buf, (size_t)n);
	c->closing = true;
}

/* Moves what the POST has into its GET's input, decoding as it goes, and
 * lets the GET parse it. */
void tunnel_feed(struct client *post)
{
	struct client *get = post->tunnel_peer;
	if (!get || get->dead)
		return;
	bool progress = true;
	while (progress && post->in_len && !post->dead && !get->dead) {
		progress = false;
		size_t want = get->in_len + post->in_len * 3 / 4 + 3;
		if (want > CLIENT_IN_CAP)
			want = CLIENT_IN_CAP;
		if (client_reserve_in(get, want) < 0)
			break;
		size_t off = 0, used = 0;
		int status = 0;
		size_t room = get->in_cap - get->in_len;
		if (room >= 3) {
			size_t n = b64_stream_decode(&post->b64, post->in, post->in_len, get->in + get->in_len, room,
						     &used, &status);
			get->in_len += n;
			off = used;
		}
		if (status == 1) {
			/* A raw interleaved frame: '$', channel, 16-bit length. */
			size_t avail = post->in_len - off;
			size_t flen = avail >= 4 ? 4 + ((size_t)post->in[off + 2] << 8 | post->in[off + 3]) : 0;
			if (flen && avail >= flen && client_reserve_in(get, get->in_len + flen) == 0) {
				memcpy(get->in + get->in_len, post->in + off, flen);
				get->in_len += flen;
				off += flen;
			}
		} else if (status < 0) {
			log_msg(LOG_INFO, NULL, post->peer, "tunnel %s: the POST body is not base64: closed", post->cookie);
			client_close(post);
			break;
		}
		if (off) {
			memmove(post->in, post->in + off, post->in_len - off);
			post->in_len -= off;
			progress = true;
		}
		get->last_activity_us = ev_now_us();
		size_t before = get->in_len;
		client_process(get);
		if (get->in_len < before)
			progress = true;
	}
}

static void tunnel_pair(struct client *get, struct client *post)
{
	if (get->tunnel_peer && get->tunnel_peer != post) {
		/* A new POST replaces the input side (clients reopen it). */
		struct client *old = get->tunnel_peer;
		old->tunnel_peer = NULL;
		client_close(old);
	}
	get->tunnel_peer = post;
	post->tunnel_peer = get;
	log_msg(LOG_DEBUG, NULL, get->peer, "tunnel %s: GET and POST joined", get->cookie);
	tunnel_feed(post);
}

static struct client *tunnel_find(struct worker *w, enum client_kind kind, const char *cookie, struct client *not)
{
	for (struct client *k = w->clients; k; k = k->next)
		if (k != not && !k->dead && k->kind == kind && !strcmp(k->cookie, cookie))
			return k;
	return NULL;
}

int tunnel_accept_head(struct client *c)
{
	static struct rtsp_request req;
	size_t have = c->in_len;
	bool maybe_get = !memcmp(c->in, "GET ", have < 4 ? have : 4);
	bool maybe_post = !memcmp(c->in, "POST ", have < 5 ? have : 5);
	if (!maybe_get && !maybe_post)
		return -1;
	if ((maybe_get && have < 4) || (maybe_post && have < 5))
		return 0;
	int r = rtsp_parse_request_head((const char *)c->in, c->in_len, &req);
	if (r == 0)
		return c->in_len >= 8192 ? (http_refuse(c, NULL, 431, "HTTP request header too large"), 1) : 0;
	if (r < 0) {
		http_refuse(c, NULL, 400, "malformed HTTP request");
		return 1;
	}
	if (strncmp(req.version, "HTTP/", 5))
		return -1;   /* an RTSP request with method GET: the methods answer it */
	const char *cookie = rtsp_header(&req, "x-sessioncookie");
	if (!cookie || !valid_cookie(cookie)) {
		http_refuse(c, &req, 400, "tunnel request without a usable x-sessioncookie");
		return 1;
	}
	snprintf(c->cookie, sizeof c->cookie, "%s", cookie);
	struct worker *w = c->w;
	/* The head is consumed; a POST's body follows it (Content-Length is
	 * a placeholder clients never honour: ignore it). */
	memmove(c->in, c->in + r, c->in_len - (size_t)r);
	c->in_len -= (size_t)r;
	if (req.method[0] == 'G') {
		if (tunnel_find(w, CLIENT_TUNNEL_GET, cookie, c)) {
			http_refuse(c, &req, 409, "a tunnel with this x-sessioncookie is already open");
			return 1;
		}
		c->kind = CLIENT_TUNNEL_GET;
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
		char buf[384];
		int n = snprintf(buf, sizeof buf,
				 "HTTP/1.%d 200 OK\r\nServer: rtspd/%s\r\nDate: %s\r\nCache-Control: no-cache\r\n"
				 "Pragma: no-cache\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n",
				 req.version_minor, RTSPD_VERSION, date);
		client_queue(c, buf, (size_t)n);
		log_msg(LOG_INFO, NULL, c->peer, "tunnel %s: GET (server to client channel) open", c->cookie);
		struct client *post = tunnel_find(w, CLIENT_TUNNEL_POST, cookie, c);
		if (post)
			tunnel_pair(c, post);
		return 1;
	}
	c->kind = CLIENT_TUNNEL_POST;
	c->last_activity_us = ev_now_us();
	log_msg(LOG_INFO, NULL, c->peer, "tunnel %s: POST (client to server channel) open", c->cookie);
	struct client *get = tunnel_find(w, CLIENT_TUNNEL_GET, cookie, c);
	if (get)
		tunnel_pair(get, c);
	return 1;
}

void tunnel_closed(struct client *c)
{
	struct client *peer = c->tunnel_peer;
	if (!peer)
		return;
	c->tunnel_peer = NULL;
	peer->tunnel_peer = NULL;
	if (c->kind == CLIENT_TUNNEL_GET) {
		/* The GET is the tunnel: without it nothing reaches the client. */
		client_close(peer);
	}
}

void tunnel_housekeeping(struct client *c, int64_t now)
{
	if (c->kind == CLIENT_TUNNEL_POST && !c->tunnel_peer && now - c->last_activity_us > TUNNEL_PAIR_TIMEOUT_US) {
		log_msg(LOG_INFO, NULL, c->peer, "tunnel %s: no GET with this x-sessioncookie came: POST closed",
			c->cookie);
		client_close(c);
	}
}
