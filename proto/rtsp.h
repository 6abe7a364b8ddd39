/* rtsp.h — parsers and small formatters for the RTSP 1.0 text protocol
 * (RFC 2326): request and response framing, the Transport, Range, Session
 * and Require headers, status lines.
 *
 * Everything here is a pure function of its arguments: no sockets, no global
 * state, no allocation. The parsers face the internet and are fuzzed
 * (tests/fuzz/fuzz_rtsp.c): any byte sequence is safe to pass in.
 *
 * Ownership: the caller provides every output struct and buffer (types in
 * rtsp-t.h). Strings in a parsed message point into the message's own `text`
 * copy, except `body`, which points into the caller's input buffer.
 *
 * Return values: 0 or a positive length on success, -errno on failure.
 */
#ifndef RTSPD_RTSP_H
#define RTSPD_RTSP_H

#include "proto/rtsp-t.h"

/* ---------------------------------------------------------------- framing */

/* Parses one request at the start of buf[0..len).
 *   > 0        a complete message of that many bytes (== req->total_len);
 *              the next pipelined message starts at buf + that;
 *   0          incomplete: read more and call again with the whole buffer;
 *   -EMSGSIZE  header section over RTSP_MAX_HEADER_BYTES, more than
 *              RTSP_MAX_HEADERS headers, or Content-Length over RTSP_MAX_BODY
 *              (answer 400/413 and close);
 *   -EBADMSG   malformed: bad request line, unknown protocol, header line
 *              without ':', a NUL or other control byte, bad or conflicting
 *              Content-Length...;
 *   -EINVAL    req is NULL, or buf is NULL with len > 0.
 * Line ends may be CRLF, LF or a bare CR (RFC 2326 §4). Empty lines before the
 * request line are skipped and counted in total_len. A bare CR that is the
 * last byte of buf and ends the blank line is taken as the end of the header
 * section, so a client ending lines with bare CRs is not left waiting; if an
 * LF follows later it is an empty line before the next message (see
 * rtsp_skip_blank_lines()).
 * The protocol may be RTSP/x.y or HTTP/x.y (the HTTP tunnel's GET and POST
 * use the same parser): any other token is -EBADMSG, and the caller checks
 * version_major/minor (505 for RTSP/2.0).
 * Folded header lines (starting with SP or TAB) are appended to the previous
 * header's value, separated by one SP; a folded line before any header is
 * -EBADMSG. A message without Content-Length has no body (§4.4). */
int rtsp_parse_request(const char *buf, size_t len, struct rtsp_request *req);

/* As rtsp_parse_request(), but stops after the header section: returns its
 * length (leading blank lines included) and leaves body NULL and body_len 0,
 * with the declared length in content_length (not limited by RTSP_MAX_BODY).
 * For the HTTP tunnel's POST, whose Content-Length is a placeholder and whose
 * body is an endless base64 stream. */
int rtsp_parse_request_head(const char *buf, size_t len, struct rtsp_request *req);

/* The same for responses ("RTSP/1.0 200 OK", "HTTP/1.0 200 OK"); the reason
 * phrase may be empty. */
int rtsp_parse_response(const char *buf, size_t len, struct rtsp_response *resp);
int rtsp_parse_response_head(const char *buf, size_t len, struct rtsp_response *resp);

/* Number of CR and LF bytes at the start of buf. A connection that also
 * carries '$'-framed data (§10.12) skips these before looking at the first
 * byte, since a CRLF may trail a message. */
size_t rtsp_skip_blank_lines(const char *buf, size_t len);

/* Value of the first header called `name` (case-insensitive), or NULL. */
const char *rtsp_header(const struct rtsp_request *req, const char *name);
const char *rtsp_response_header(const struct rtsp_response *resp, const char *name);
const char *rtsp_header_find(const struct rtsp_header *headers, int nheaders, const char *name);

/* ---------------------------------------------------------------- responses */

/* Reason phrase of every status code of RFC 2326 §7.1.1, plus 463 (RFC 4567);
 * "Unknown" for any other code. */
const char *rtsp_reason(int status);

/* Writes "RTSP/1.0 <status> <reason>\r\nCSeq: <cseq>\r\n" (no CSeq line when
 * cseq < 0) and a terminating NUL. Returns the length without the NUL,
 * -ENOSPC if it does not fit in cap, -EINVAL for a status outside 100..999. */
int rtsp_response_begin(char *buf, size_t cap, int status, int cseq);

/* ---------------------------------------------------------------- Transport */

/* Parses a Transport header value: comma-separated specs in the client's
 * order of preference. Fills out[0..max) with the usable ones (RTP/AVP,
 * RTP/AVP/UDP, RTP/AVP/TCP, RTP/SAVP, RTP/SAVP/UDP, RTP/SAVP/TCP, matched
 * without regard to case) and returns how many; specs past `max` are still
 * checked but not stored. Unknown specs (e.g. "RAW/RAW/UDP") are skipped, so
 * 0 means nothing usable (answer 461). Unknown parameters are ignored.
 * -EINVAL for an empty value or a malformed parameter of a usable spec: ports
 * outside 0..65535, channels or ttl outside 0..255, ssrc not 1-8 hex digits,
 * an address with characters outside [A-Za-z0-9.:_%[]-] or longer than 63.
 * A single port or channel "p" means [p, p+1], so p must leave room for p+1.
 * Values may be quoted; commas and semicolons inside quotes do not split. */
int rtsp_parse_transports(const char *value, struct rtsp_transport *out, int max);

/* Writes one transport spec in the canonical response form, e.g.
 * "RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257;ssrc=1A2B3C4D"
 * or "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1A2B3C4D". Parameters appear in
 * the order destination, source, interleaved, client_port, server_port, port,
 * ttl, ssrc, mode, append; absent ones (-1, "", false) are left out. A
 * multicast spec carries mode="PLAY" (as in the ONVIF-S example), a recording
 * one mode="RECORD". Returns the length (NUL not counted) or -ENOSPC. */
int rtsp_format_transport(const struct rtsp_transport *t, char *buf, size_t len);

/* Sets every field to "absent": AVP over UDP, multicast (the RFC default),
 * ports -1, ttl -1, empty addresses. */
void rtsp_transport_init(struct rtsp_transport *t);

/* ---------------------------------------------------------------- Range */

/* Parses npt=123.45-125, npt=12:05:35.3-, npt=now-, npt=-20 (start 0),
 * clock=19961108T143720.25Z-[end], smpte=10:07:33-, smpte-25=..., and
 * smpte-30-drop=... (frames are converted at 25 or 30 per second; the
 * drop-frame form is read as its label time). A ";time=..." suffix is
 * ignored. -EINVAL if malformed, -ENOTSUP for an unknown unit (answer 501).
 * npt values must stay below 10^11 s; clock years are 0000-9999. */
int rtsp_parse_range(const char *value, struct rtsp_range *r);

/* Writes a Range value in r's units: "npt=12.345-[end]", "npt=now-",
 * "clock=20090615T114900.440Z-[end]" (milliseconds, only when not zero),
 * "smpte=10:07:33[:ff[.ss]]-[end]" (30 frames per second, hundredths of a
 * frame). Values keep their millisecond. Returns the length or
 * -ENOSPC; -EINVAL for values out of the parseable range. */
int rtsp_format_range(const struct rtsp_range *r, char *buf, size_t len);

/* ---------------------------------------------------------------- Session, Require */

/* Copies the session id of a Session header value ("12345678;timeout=60")
 * into id: the text up to ';', surrounding whitespace removed, made of
 * ALPHA DIGIT $ - _ . + (§3.4). -EINVAL for an empty id or another character,
 * -ENOSPC if it does not fit in idlen (NUL included). */
int rtsp_parse_session(const char *value, char *id, size_t idlen);

/* The ";timeout=N" parameter of a Session header value (case-insensitive,
 * spaces around ';' tolerated): N >= 0, -ENOENT when absent, -EINVAL if N is
 * not a number of at most 9 digits. */
int rtsp_session_timeout(const char *value);

/* Calls cb for every option tag of a Require / Proxy-Require / Supported
 * value: comma-separated, whitespace-trimmed, empty items skipped. The tag is
 * not NUL-terminated. Stops at the first non-zero return of cb and returns
 * it; returns 0 when every tag was visited, -EINVAL for NULL arguments. */
int rtsp_require_foreach(const char *value,
			 int (*cb)(const char *tag, size_t taglen, void *arg), void *arg);

#endif
