/* rtsp-t.h — the types of the RTSP text protocol (RFC 2326): parsed requests
 * and responses, and the structured values of the Transport, Range and
 * Session headers. The functions that fill them are in rtsp.h.
 *
 * Ownership: every struct here is provided by the caller (usually on its
 * stack or inside a connection object); the parsers never allocate.
 * - struct rtsp_request / rtsp_response keep a private copy of the start line
 *   and headers in `text`; every `const char *` of the start line and of the
 *   headers points into that copy, so they stay valid as long as the struct
 *   does, even after the caller's input buffer has been reused.
 * - `body` is the exception: it points into the CALLER's input buffer and is
 *   valid only until the caller consumes `total_len` bytes from it.
 * - struct rtsp_transport and struct rtsp_range hold plain values and copies.
 */
#ifndef RTSPD_RTSP_T_H
#define RTSPD_RTSP_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTSP_MAX_HEADER_BYTES 8192   /* start line + headers, blank line included */
#define RTSP_MAX_HEADERS      64
#define RTSP_MAX_BODY         65536

/* One header line. Both strings are NUL-terminated and point into the
 * message's `text`. The name is as the peer spelled it (look it up with
 * rtsp_header(), which ignores case); the value has its surrounding
 * whitespace removed, and folded continuation lines appended with one SP. */
struct rtsp_header {
	const char *name;
	const char *value;
};

struct rtsp_request {
	char text[RTSP_MAX_HEADER_BYTES + 1];   /* private copy of request line + headers, lines NUL-split */
	const char *method;                     /* "OPTIONS", "GET_PARAMETER", ... (case as sent) */
	const char *uri;                        /* Request-URI as sent: "rtsp://...", "/path" or "*" */
	const char *version;                    /* "RTSP/1.0", "RTSP/2.0", "HTTP/1.1", ... */
	int version_major, version_minor;
	int cseq;                               /* -1 when missing or not a number */
	struct rtsp_header headers[RTSP_MAX_HEADERS];
	int nheaders;
	size_t content_length;                  /* declared Content-Length, 0 when absent */
	const char *body;                       /* points into the CALLER's input buffer; NULL when body_len is 0 */
	size_t body_len;
	size_t total_len;                       /* bytes of the whole message (leading blank lines + headers + body) */
};

struct rtsp_response {
	char text[RTSP_MAX_HEADER_BYTES + 1];   /* private copy of status line + headers, lines NUL-split */
	const char *version;                    /* "RTSP/1.0", "HTTP/1.0", ... */
	int version_major, version_minor;
	int status;                             /* 100..999 */
	const char *reason;                     /* reason phrase, "" when the peer sent none */
	int cseq;                               /* -1 when missing or not a number */
	struct rtsp_header headers[RTSP_MAX_HEADERS];
	int nheaders;
	size_t content_length;
	const char *body;                       /* points into the CALLER's input buffer; NULL when body_len is 0 */
	size_t body_len;
	size_t total_len;
};

/* Transport header (RFC 2326 §12.39), plus RTP/SAVP (RFC 3711). */
enum rtsp_profile { RTSP_PROFILE_AVP, RTSP_PROFILE_SAVP };
enum rtsp_lower   { RTSP_LOWER_UDP, RTSP_LOWER_TCP };

#define RTSP_ADDR_MAX 64

struct rtsp_transport {
	enum rtsp_profile profile;
	enum rtsp_lower lower;
	bool multicast;            /* the last of unicast/multicast given; multicast when neither (the RFC default) */
	bool unicast_given, multicast_given;
	int client_port[2];        /* -1 when absent; a single value "p" gives [p, p+1] */
	int server_port[2];
	int port[2];               /* multicast port pair */
	int interleaved[2];        /* TCP channels 0..255 */
	int ttl;                   /* 0..255, -1 when absent */
	char destination[RTSP_ADDR_MAX];   /* "" when absent or given without a value */
	char source[RTSP_ADDR_MAX];
	bool mode_record;          /* mode="RECORD" (quotes optional, case-insensitive); otherwise PLAY */
	bool has_ssrc;
	uint32_t ssrc;
	bool append;
};

/* Range header (RFC 2326 §12.29, §3.5-3.7). */
enum rtsp_range_kind { RTSP_RANGE_NPT, RTSP_RANGE_CLOCK, RTSP_RANGE_SMPTE };

struct rtsp_range {
	enum rtsp_range_kind kind;
	bool start_now;            /* npt=now- */
	double start;              /* seconds; for clock: seconds since the Unix epoch (UTC) */
	bool has_end;
	double end;
};

#endif
