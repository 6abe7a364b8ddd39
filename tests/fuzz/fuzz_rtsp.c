/* fuzz_rtsp.c — libFuzzer target for the RTSP text parsers (proto/rtsp.c).
 *
 * The same input goes to the request and response parsers (as raw bytes)
 * and, NUL-terminated, to the Transport, Range, Session and Require parsers.
 * Beyond "no crash, no sanitizer report" it checks properties the server
 * relies on:
 * - a complete message lies inside the input, its strings inside its own
 *   copy, its body right at its end; parsing exactly those bytes again gives
 *   the same length, and a shorter prefix is never an error (a stream that
 *   arrives byte by byte is judged like one that arrives whole);
 * - whatever Transport/Range the parser accepts, the formatter writes back
 *   in a form the parser reads as the same value.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"

#include "proto/rtsp.h"


static struct rtsp_request req;
static struct rtsp_response resp;

static bool inside(const char *p, const char *base, size_t size)
{
	return p >= base && p < base + size;
}

static void check_headers(const char *text, const struct rtsp_header *h, int n)
{
	CHECK(n >= 0 && n <= RTSP_MAX_HEADERS);
	for (int i = 0; i < n; i++) {
		CHECK(inside(h[i].name, text, RTSP_MAX_HEADER_BYTES + 1));
		CHECK(inside(h[i].value, text, RTSP_MAX_HEADER_BYTES + 1));
		CHECK(h[i].name[0] != '\0');
		size_t vlen = strlen(h[i].value);
		CHECK(vlen == 0 || (h[i].value[0] != ' ' && h[i].value[vlen - 1] != ' '));
		CHECK(strpbrk(h[i].value, "\r\n") == NULL);
	}
}

/* The properties of a complete message, shared by requests and responses. */
static void check_message(const char *buf, size_t size, int r, const char *text,
			  const struct rtsp_header *headers, int nheaders, int cseq,
			  const char *body, size_t body_len, size_t total_len)
{
	CHECK((size_t)r <= size && (size_t)r == total_len);
	check_headers(text, headers, nheaders);
	CHECK(cseq >= -1);
	CHECK(body_len <= RTSP_MAX_BODY);
	if (body_len > 0) {
		CHECK(body >= buf && body + body_len == buf + r);
	} else {
		CHECK(body == NULL);
	}
}

/* Parsing only a prefix of a complete message of r bytes: incomplete, or, for
 * a message without body whose blank line ends in CR LF cut before the LF,
 * complete one byte early (the bare-CR rule). Never an error. */
static void check_prefix(const char *buf, int r, size_t k, bool request)
{
	int p = request ? rtsp_parse_request(buf, k, &req) : rtsp_parse_response(buf, k, &resp);
	if (p == 0)
		return;
	CHECK(p > 0);
	CHECK((size_t)p == k && k + 1 == (size_t)r && buf[k - 1] == '\r' && buf[k] == '\n');
}

static void fuzz_request(const char *buf, size_t size)
{
	int r = rtsp_parse_request(buf, size, &req);
	CHECK(r == 0 || r > 0 || r == -EMSGSIZE || r == -EBADMSG);
	int head = rtsp_parse_request_head(buf, size, &req);
	if (r <= 0)
		return;

	/* The head parser stopped where the body starts. */
	CHECK(head > 0 && head <= r);
	rtsp_parse_request(buf, size, &req);
	check_message(buf, size, r, req.text, req.headers, req.nheaders, req.cseq,
		      req.body, req.body_len, req.total_len);
	CHECK((size_t)head + req.body_len == (size_t)r);
	CHECK(req.method[0] && req.uri[0] && req.version[0]);
	CHECK(strncmp(req.version, "RTSP/", 5) == 0 || strncmp(req.version, "HTTP/", 5) == 0);
	for (int i = 0; i < req.nheaders; i++)
		CHECK(rtsp_header(&req, req.headers[i].name) != NULL);
	if (req.cseq >= 0)
		CHECK(rtsp_header(&req, "cseq") != NULL);

	CHECK(rtsp_parse_request(buf, (size_t)r, &req) == r);
	check_prefix(buf, r, (size_t)r - 1, true);
	check_prefix(buf, r, (size_t)r / 2, true);
	check_prefix(buf, r, (size_t)(unsigned char)buf[0] * (size_t)r / 256, true);
}

static void fuzz_response(const char *buf, size_t size)
{
	int r = rtsp_parse_response(buf, size, &resp);
	CHECK(r == 0 || r > 0 || r == -EMSGSIZE || r == -EBADMSG);
	int head = rtsp_parse_response_head(buf, size, &resp);
	if (r <= 0)
		return;
	CHECK(head > 0 && head <= r);
	rtsp_parse_response(buf, size, &resp);
	check_message(buf, size, r, resp.text, resp.headers, resp.nheaders, resp.cseq,
		      resp.body, resp.body_len, resp.total_len);
	CHECK(resp.status >= 100 && resp.status <= 999);
	CHECK(resp.reason != NULL);
	CHECK(rtsp_parse_response(buf, (size_t)r, &resp) == r);
	check_prefix(buf, r, (size_t)r - 1, false);
	check_prefix(buf, r, (size_t)r / 2, false);
}

static void check_pair(const int pair[2], int max)
{
	CHECK((pair[0] == -1 && pair[1] == -1) ||
	      (pair[0] >= 0 && pair[0] <= max && pair[1] >= 0 && pair[1] <= max));
}

static void fuzz_transport(const char *s)
{
	struct rtsp_transport t[4];
	int n = rtsp_parse_transports(s, t, 4);
	CHECK(n == -EINVAL || (n >= 0 && n <= 4));
	for (int i = 0; i < n; i++) {
		check_pair(t[i].client_port, 65535);
		check_pair(t[i].server_port, 65535);
		check_pair(t[i].port, 65535);
		check_pair(t[i].interleaved, 255);
		CHECK(t[i].ttl >= -1 && t[i].ttl <= 255);
		CHECK(strlen(t[i].destination) < sizeof t[i].destination);

		char out[512];
		int len = rtsp_format_transport(&t[i], out, sizeof out);
		CHECK(len > 0 && (size_t)len == strlen(out));
		CHECK(rtsp_format_transport(&t[i], out, (size_t)len) == -ENOSPC);
		rtsp_format_transport(&t[i], out, sizeof out);

		struct rtsp_transport back;
		CHECK(rtsp_parse_transports(out, &back, 1) == 1);
		CHECK(back.profile == t[i].profile && back.lower == t[i].lower);
		CHECK(back.multicast == t[i].multicast);
		CHECK(memcmp(back.client_port, t[i].client_port, sizeof back.client_port) == 0);
		CHECK(memcmp(back.server_port, t[i].server_port, sizeof back.server_port) == 0);
		CHECK(memcmp(back.port, t[i].port, sizeof back.port) == 0);
		CHECK(memcmp(back.interleaved, t[i].interleaved, sizeof back.interleaved) == 0);
		CHECK(back.ttl == t[i].ttl);
		CHECK(strcmp(back.destination, t[i].destination) == 0);
		CHECK(strcmp(back.source, t[i].source) == 0);
		CHECK(back.mode_record == t[i].mode_record && back.append == t[i].append);
		CHECK(back.has_ssrc == t[i].has_ssrc && back.ssrc == t[i].ssrc);
	}
}

static double distance(double a, double b)
{
	return a > b ? a - b : b - a;
}

static void fuzz_range(const char *s)
{
	struct rtsp_range r, back;
	int ret = rtsp_parse_range(s, &r);
	CHECK(ret == 0 || ret == -EINVAL || ret == -ENOTSUP);
	if (ret != 0)
		return;
	char out[128];
	int len = rtsp_format_range(&r, out, sizeof out);
	CHECK(len > 0 && (size_t)len == strlen(out));
	CHECK(rtsp_parse_range(out, &back) == 0);
	/* Formatting keeps milliseconds (smpte: hundredths of a 1/30 s frame). */
	const double tolerance = 1e-3;
	CHECK(back.kind == r.kind && back.start_now == r.start_now && back.has_end == r.has_end);
	CHECK(distance(back.start, r.start) <= tolerance);
	if (r.has_end)
		CHECK(distance(back.end, r.end) <= tolerance);
}

static void fuzz_session(const char *s)
{
	char id[64];
	int ret = rtsp_parse_session(s, id, sizeof id);
	CHECK(ret == 0 || ret == -EINVAL || ret == -ENOSPC);
	if (ret == 0) {
		CHECK(id[0] != '\0' && strlen(id) < sizeof id);
		CHECK(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$-_.+") == strlen(id));
	}
	int timeout = rtsp_session_timeout(s);
	CHECK(timeout >= 0 || timeout == -ENOENT || timeout == -EINVAL);
}

struct tag_bounds {
	const char *s;
	size_t len;
	int count;
};

static int check_tag(const char *tag, size_t taglen, void *arg)
{
	struct tag_bounds *b = arg;
	CHECK(taglen > 0 && tag >= b->s && tag + taglen <= b->s + b->len);
	CHECK(tag[0] != ' ' && tag[0] != '\t' && tag[taglen - 1] != ' ' && tag[taglen - 1] != '\t');
	CHECK(memchr(tag, ',', taglen) == NULL);
	return ++b->count == 1000 ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	fuzz_request(buf, size);
	fuzz_response(buf, size);

	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_transport(s);
	fuzz_range(s);
	fuzz_session(s);
	struct tag_bounds bounds = { s, strlen(s), 0 };
	CHECK(rtsp_require_foreach(s, check_tag, &bounds) >= 0);
	free(s);

	if (size >= 2) {
		int status = data[0] << 8 | data[1];
		char line[128];
		int len = rtsp_response_begin(line, sizeof line, status, status - 500);
		CHECK(len > 0 || len == -EINVAL);
		CHECK(rtsp_reason(status) != NULL);
	}
	return 0;
}
