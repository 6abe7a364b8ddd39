/* websocket.c — RTSP over WebSocket (Sec-WebSocket-Protocol:
 * rtsp.onvif.org) inside a worker.
 *
 * The master did the HTTP upgrade and read the first RTSP request out of
 * the frames (it needed it to route the connection); the worker gets the
 * decoded bytes and any frames not decoded yet. From then on the client's
 * frames are read into c->raw, their payloads (binary or text,
 * fragmented or not: RTSP is a byte stream, so message and frame
 * boundaries do not matter) unmasked into c->in and parsed as on any RTSP
 * connection. Pings are answered, a close is answered and ends the
 * connection, an unmasked or malformed client frame gets close 1002. What
 * we send goes out as unmasked binary frames: client_queue() frames each
 * response, the send path one frame per interleaved packet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/ws.h"
#include "worker/worker.h"

/* Raw frames waiting: at most one whole maximal frame plus a read. */
#define WS_RAW_CAP (WS_MAX_CLIENT_PAYLOAD + 2 * WS_MAX_HEADER + 65536)

int ws_client_reserve(struct client *c, size_t need)
{
	if (need <= c->raw_cap)
		return 0;
	if (need > WS_RAW_CAP)
		return -ENOBUFS;
	size_t n = c->raw_cap ? c->raw_cap : 4096;
	while (n < need)
		n *= 2;
	if (n > WS_RAW_CAP)
		n = WS_RAW_CAP;
	uint8_t *b = realloc(c->raw, n);
	if (!b)
		return -ENOMEM;
	c->raw = b;
	c->raw_cap = n;
	return 0;
}

static void ws_close_with(struct client *c, uint16_t code, const char *why)
{
	if (why)
		log_msg(LOG_INFO, NULL, c->peer, "WebSocket: %s: closed (%u)", why, code);
	uint8_t frame[WS_MAX_HEADER + 2];
	size_t h = ws_frame_header(frame, WS_CLOSE, 2);
	frame[h] = (uint8_t)(code >> 8);
	frame[h + 1] = (uint8_t)code;
	client_queue_raw(c, frame, h + 2);
	c->closing = true;
	client_flush(c);
}

void ws_client_decode(struct client *c)
{
	size_t off = 0;
	while (!c->dead && !c->closing && off < c->raw_len) {
		struct ws_frame f;
		long n = ws_parse_frame(c->raw + off, c->raw_len - off, &f);
		if (n == 0)
			break;
		if (n < 0) {
			ws_close_with(c, n == -EMSGSIZE ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL,
				      n == -EMSGSIZE ? "frame too large" : "malformed frame");
			break;
		}
		if (!f.masked) {
			ws_close_with(c, WS_CLOSE_PROTOCOL, "unmasked client frame");
			break;
		}
		uint8_t *payload = c->raw + off + f.header_len;
		size_t plen = (size_t)f.len;
		ws_unmask(payload, plen, f.mask, 0);
		if (f.opcode == WS_PING) {
			uint8_t frame[WS_MAX_HEADER + 125];
			size_t h = ws_frame_header(frame, WS_PONG, plen);
			memcpy(frame + h, payload, plen);
			client_queue_raw(c, frame, h + plen);
		} else if (f.opcode == WS_CLOSE) {
			if (plen == 1) {
				ws_close_with(c, WS_CLOSE_PROTOCOL, "close frame with a 1-byte body");
				break;
			}
			uint16_t code = plen >= 2 ? (uint16_t)(payload[0] << 8 | payload[1]) : WS_CLOSE_NORMAL;
			log_msg(LOG_DEBUG, NULL, c->peer, "WebSocket: close %u from the client", code);
			ws_close_with(c, WS_CLOSE_NORMAL, NULL);
			off += (size_t)n;
			break;
		} else if (f.opcode != WS_PONG) {
			/* RFC 6455 §5.4: a continuation only inside a fragmented
			 * message, a new message only outside one. */
			if ((f.opcode == WS_CONTINUATION) != c->ws_fragmented) {
				ws_close_with(c, WS_CLOSE_PROTOCOL, f.opcode == WS_CONTINUATION
						? "continuation frame outside a fragmented message"
						: "new message inside a fragmented one");
				break;
			}
			c->ws_fragmented = !f.fin;
			if (f.opcode != WS_CONTINUATION) {
				c->ws_text = f.opcode == WS_TEXT;
				c->ws_utf8 = 0;
			}
			if (c->ws_text && (ws_utf8_feed(&c->ws_utf8, payload, plen) < 0 || (f.fin && c->ws_utf8))) {
				ws_close_with(c, WS_CLOSE_BAD_DATA, "text message that is not UTF-8");
				break;
			}
			/* Data: the RTSP byte stream. The input buffer's limit is the
			 * RTSP parser's; a client that overruns it is refused there. */
			if (c->in_len + plen > CLIENT_IN_CAP || client_reserve_in(c, c->in_len + plen) < 0) {
				ws_close_with(c, WS_CLOSE_TOO_BIG, "more unparsed RTSP than a request may be");
				break;
			}
			memcpy(c->in + c->in_len, payload, plen);
			c->in_len += plen;
		}
		off += (size_t)n;
	}
	if (off) {
		memmove(c->raw, c->raw + off, c->raw_len - off);
		c->raw_len -= off;
	}
	if (!c->dead && !c->closing)
		client_process(c);
	else if (!c->dead)
		client_flush(c);
}

void ws_client_read(struct client *c)
{
	for (;;) {
		if (c->raw_len == c->raw_cap && ws_client_reserve(c, c->raw_len + 4096) < 0) {
			ws_close_with(c, WS_CLOSE_TOO_BIG, "frame too large");
			return;
		}
		ssize_t n = read(c->fd, c->raw + c->raw_len, c->raw_cap - c->raw_len);
		if (n > 0) {
			c->raw_len += (size_t)n;
			c->last_activity_us = ev_now_us();
			ws_client_decode(c);
			if (c->dead || c->closing)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		log_msg(LOG_DEBUG, NULL, c->peer, "WebSocket connection closed by the client");
		client_close(c);
		return;
	}
}
