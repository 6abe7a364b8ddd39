/* ws.h — WebSocket (RFC 6455) framing for RTSP over WebSocket
 * (Sec-WebSocket-Protocol: rtsp.onvif.org).
 *
 * The server side only: parsing the client's frames (which must be
 * masked), building the headers of our unmasked frames, and the
 * handshake's Sec-WebSocket-Accept. Pure functions, no allocation.
 */
#ifndef RTSPD_WS_H
#define RTSPD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_CONTINUATION = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xA,
};

/* Close status codes we send. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_BAD_DATA 1007
#define WS_CLOSE_TOO_BIG 1009

/* The largest client frame payload accepted: more than any RTSP message
 * or interleaved frame a client sends. */
#define WS_MAX_CLIENT_PAYLOAD (128 * 1024)
/* The largest header of a frame we send (8-byte length form). */
#define WS_MAX_HEADER 10

struct ws_frame {
	bool fin;
	uint8_t opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t len;          /* payload bytes */
	size_t header_len;     /* bytes before the payload */
};

/* Parses the frame at the start of buf. Returns its total size (header +
 * payload, > 0) when it is complete, 0 when more bytes are needed, or
 * -EPROTO (reserved bits set, unknown opcode, a control frame fragmented
 * or longer than 125 bytes), -EMSGSIZE (payload over WS_MAX_CLIENT_PAYLOAD).
 * Whether the frame is masked is reported, not judged: the caller refuses
 * unmasked client frames. */
long ws_parse_frame(const uint8_t *buf, size_t len, struct ws_frame *f);

/* XORs len payload bytes with the mask; offset is the payload position of
 * p[0] (for payloads unmasked in pieces). */
void ws_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

/* Writes the header of an unmasked frame with FIN set; returns its size. */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], uint8_t opcode, uint64_t payload_len);

/* Text messages must be UTF-8 (RFC 6455 §8.1), checked as their frames
 * arrive: *state starts at 0 for a new message and carries a character
 * split across frames. Returns 0, or -EILSEQ for an invalid sequence
 * (overlong forms, surrogates and code points above U+10FFFF included).
 * At the message's last frame the state must be back to 0. */
int ws_utf8_feed(uint32_t *state, const uint8_t *p, size_t n);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)),
 * 28 characters + NUL. Returns 0, or -EINVAL for a key that is not the
 * base64 of 16 bytes. */
int ws_accept_key(const char *key, char out[29]);

#endif
