/* url.h — RTSP URL parsing for the server's routing: splits a Request-URI
 * into scheme, host, port, a percent-decoded path that is safe to map onto
 * files, the raw query, and the track number clients append to build
 * per-stream control URLs (RFC 2326 §3.2, App C.1.1).
 *
 * Ownership: the caller provides struct rtsp_url and every output buffer;
 * nothing is allocated and no global state is kept. Any string is safe to
 * pass in (fuzzed by tests/fuzz/fuzz_url.c).
 */
#ifndef RTSPD_URL_H
#define RTSPD_URL_H

#include <stdbool.h>
#include <stddef.h>

struct rtsp_url {
	char scheme[16];     /* lower case: "rtsp", "rtsps", "rtsph", ...; "" for an abs_path or "*" */
	char host[256];      /* as sent, without [] for IPv6; "" for an abs_path or "*" */
	int  port;           /* -1 when absent */
	char path[1024];     /* percent-DECODED, without leading, trailing or repeated '/'; "" for the root */
	char query[1024];    /* raw, without '?', with a trailing "/trackID=N" removed, and without a trailing '/' */
	int  track;          /* N of a trailing "/trackID=N" (also "trackid=", "track=", "streamid=", any case), -1 if none */
	bool asterisk;       /* the Request-URI was "*" (OPTIONS on the server itself) */
};

/* Parses "rtsp://host[:port]/path?query", "rtsp://user:pass@host/...",
 * "rtsp://[::1]:8554/x", an abs_path "/path?query", or "*". Any scheme made
 * of ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") is accepted and lowered; the
 * caller decides which it serves. The user info is dropped (credentials go in
 * Authorization), and so is a "#fragment".
 *
 * The control suffix "/trackID=N" may end the path
 * ("rtsp://h/a/b.mp4/trackID=1") or the query, because clients build track
 * URLs by appending to Content-Base ("rtsp://h/sample.mp4?mode=live/trackID=0").
 *
 * The path is percent-decoded, then split on '/': empty segments are
 * dropped (so it can never start with '/'), and a "." or ".." segment, a
 * backslash, a decoded NUL or other control byte, a raw space, or a
 * malformed %-escape make the URL invalid, so the server never maps such a
 * path onto the file system.
 * Returns 0 or -EINVAL (also for a host, path or query too long for its field,
 * a port outside 0..65535, or an empty host after "scheme://"). */
int rtsp_url_parse(const char *uri, struct rtsp_url *u);

/* Looks key up in a query "a=1&mode=live" (keys compared without regard to
 * case, the first match wins, a key without '=' has the value "") and copies
 * its percent-decoded value into val. '+' is kept as is: RTSP URLs are not
 * form-encoded. Returns 0, -ENOENT if absent, -ENOSPC if the value and its
 * NUL do not fit in vlen, -EINVAL for a malformed %-escape or a decoded NUL. */
int url_query_get(const char *query, const char *key, char *val, size_t vlen);

#endif
