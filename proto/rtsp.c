/* rtsp.c — RTSP 1.0 text protocol parsers and formatters (see rtsp.h). */
#include "proto/rtsp.h"
#include "proto/ascii.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- characters */

/* RFC 2616 §2.2 token characters: visible ASCII except separators. Methods
 * and header names are tokens. */
static bool is_token_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

/* A byte that may not appear anywhere in a header section: controls other
 * than TAB (CR and LF are handled as line ends before this is asked). They
 * have no business in RTSP text, and letting them through would let a peer
 * smuggle them into logs or into headers we echo. */
static bool is_forbidden_byte(unsigned char c)
{
	return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

/* ---------------------------------------------------------------- spans */

struct span {
	const char *p;
	size_t n;
};

static struct span span_trim(struct span s)
{
	while (s.n > 0 && is_space((unsigned char)s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_space((unsigned char)s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool span_ieq(struct span s, const char *lit)
{
	size_t n = strlen(lit);
	if (s.n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (to_lower((unsigned char)s.p[i]) != to_lower((unsigned char)lit[i]))
			return false;
	return true;
}

static bool str_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (to_lower((unsigned char)*a) != to_lower((unsigned char)*b))
			return false;
	return *a == *b;
}

/* Takes the next item of a `sep`-separated list from *rest, honouring double
 * quotes (a separator inside quotes does not split). Returns false when the
 * list is exhausted. Items may be empty. */
static bool span_next_item(struct span *rest, char sep, struct span *item)
{
	if (rest->p == NULL)
		return false;
	bool quoted = false;
	size_t i;
	for (i = 0; i < rest->n; i++) {
		char c = rest->p[i];
		if (c == '"')
			quoted = !quoted;
		else if (c == sep && !quoted)
			break;
	}
	item->p = rest->p;
	item->n = i;
	if (i < rest->n) {
		rest->p += i + 1;
		rest->n -= i + 1;
	} else {
		rest->p = NULL;   /* no separator left: this was the last item */
		rest->n = 0;
	}
	return true;
}

/* Unsigned decimal of 1..max_digits digits and nothing else, <= max. */
static int span_to_uint(struct span s, size_t max_digits, unsigned long max, unsigned long *out)
{
	if (s.n == 0 || s.n > max_digits)
		return -EINVAL;
	unsigned long v = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!is_digit((unsigned char)s.p[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(s.p[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------- output buffer */

struct outbuf {
	char *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

__attribute__((format(printf, 2, 3)))
static void out_printf(struct outbuf *o, const char *fmt, ...)
{
	if (o->overflow)
		return;
	size_t room = o->cap > o->len ? o->cap - o->len : 0;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

static int out_finish(struct outbuf *o)
{
	if (o->overflow || o->len > INT_MAX) {
		if (o->cap > 0)
			o->buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)o->len;
}

/* ---------------------------------------------------------------- header section scan */

size_t rtsp_skip_blank_lines(const char *buf, size_t len)
{
	size_t n = 0;
	if (buf == NULL)
		return 0;
	while (n < len && (buf[n] == '\r' || buf[n] == '\n'))
		n++;
	return n;
}

/* Where the header section is, as found by scan_head(). */
struct head_scan {
	size_t skip;             /* leading CR/LF bytes */
	size_t head_len;         /* start line .. blank line included; set when complete */
	size_t start_line_len;   /* length of the start line once its end has been seen, else 0 */
};

/* Length of the line end at buf[pos] (which is CR or LF) inside buf[0..end):
 * 2 for CRLF, else 1. */
static size_t line_end_len(const char *buf, size_t end, size_t pos)
{
	if (buf[pos] == '\r' && pos + 1 < end && buf[pos + 1] == '\n')
		return 2;
	return 1;
}

/* Finds the end of the header section. Returns 1 when complete, 0 when more
 * bytes are needed, -EMSGSIZE or -EBADMSG. Looks at every byte once. */
static int scan_head(const char *buf, size_t len, struct head_scan *scan)
{
	memset(scan, 0, sizeof *scan);
	scan->skip = rtsp_skip_blank_lines(buf, len);
	/* A peer sending nothing but blank lines must not make us buffer forever. */
	if (scan->skip > RTSP_MAX_HEADER_BYTES)
		return -EMSGSIZE;

	const size_t start = scan->skip;
	size_t line_start = start;
	bool in_start_line = true;
	for (size_t pos = start; pos < len; pos++) {
		if (pos - start >= RTSP_MAX_HEADER_BYTES)
			return -EMSGSIZE;
		unsigned char c = (unsigned char)buf[pos];
		if (c != '\r' && c != '\n') {
			if (is_forbidden_byte(c))
				return -EBADMSG;
			continue;
		}
		size_t line_len = pos - line_start;
		/* A CR as the very last byte may be a bare CR or the first half of a
		 * CRLF. Only the blank line that ends the section must be decided
		 * now; any other line is followed by more header bytes anyway. */
		if (c == '\r' && pos + 1 == len) {
			if (in_start_line)
				scan->start_line_len = line_len;
			else if (line_len == 0) {
				scan->head_len = pos + 1 - start;
				return 1;
			}
			return 0;
		}
		size_t next = pos + line_end_len(buf, len, pos);
		if (next - start > RTSP_MAX_HEADER_BYTES)
			return -EMSGSIZE;
		if (in_start_line) {
			scan->start_line_len = line_len;
			in_start_line = false;
		} else if (line_len == 0) {
			scan->head_len = next - start;
			return 1;
		}
		line_start = next;
		pos = next - 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- start lines */

/* Offsets of the parts of a start line, relative to its first byte. */
struct start_line {
	size_t a_off, a_len;     /* request: method;  response: version */
	size_t b_off, b_len;     /* request: URI;     response: status */
	size_t c_off, c_len;     /* request: version; response: reason (may be empty) */
	int major, minor;
	int status;
};

/* "RTSP/<d>.<d>" or "HTTP/<d>.<d>", 1 to 3 digits each. The protocol names
 * are case-sensitive (RFC 2326 §3.1). */
static int parse_version(const char *p, size_t n, int *major, int *minor)
{
	if (n < 8 || (memcmp(p, "RTSP/", 5) != 0 && memcmp(p, "HTTP/", 5) != 0))
		return -EBADMSG;
	struct span rest = { p + 5, n - 5 };
	const char *dot = memchr(rest.p, '.', rest.n);
	if (dot == NULL)
		return -EBADMSG;
	struct span maj = { rest.p, (size_t)(dot - rest.p) };
	struct span min = { dot + 1, rest.n - maj.n - 1 };
	unsigned long vmaj, vmin;
	if (span_to_uint(maj, 3, 999, &vmaj) < 0 || span_to_uint(min, 3, 999, &vmin) < 0)
		return -EBADMSG;
	*major = (int)vmaj;
	*minor = (int)vmin;
	return 0;
}

static size_t skip_spaces(const char *p, size_t n, size_t i)
{
	while (i < n && is_space((unsigned char)p[i]))
		i++;
	return i;
}

/* METHOD SP Request-URI SP version, with runs of SP/TAB accepted between the
 * parts and at the end. */
static int parse_request_line(const char *p, size_t n, struct start_line *sl)
{
	size_t i = 0;
	memset(sl, 0, sizeof *sl);
	while (i < n && is_token_char((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || !is_space((unsigned char)p[i]))
		return -EBADMSG;
	sl->a_len = i;

	i = skip_spaces(p, n, i);
	sl->b_off = i;
	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] != 0x7f)
		i++;
	sl->b_len = i - sl->b_off;
	if (sl->b_len == 0 || i == n || !is_space((unsigned char)p[i]))
		return -EBADMSG;

	i = skip_spaces(p, n, i);
	sl->c_off = i;
	while (i < n && !is_space((unsigned char)p[i]))
		i++;
	sl->c_len = i - sl->c_off;
	if (skip_spaces(p, n, i) != n)
		return -EBADMSG;
	return parse_version(p + sl->c_off, sl->c_len, &sl->major, &sl->minor);
}

/* version SP 3DIGIT [SP reason-phrase] */
static int parse_status_line(const char *p, size_t n, struct start_line *sl)
{
	size_t i = 0;
	memset(sl, 0, sizeof *sl);
	while (i < n && !is_space((unsigned char)p[i]))
		i++;
	sl->a_len = i;
	if (parse_version(p, i, &sl->major, &sl->minor) < 0)
		return -EBADMSG;
	if (i == n)
		return -EBADMSG;

	i = skip_spaces(p, n, i);
	sl->b_off = i;
	if (n - i < 3 || !is_digit((unsigned char)p[i]) || !is_digit((unsigned char)p[i + 1]) ||
	    !is_digit((unsigned char)p[i + 2]) || p[i] == '0')
		return -EBADMSG;
	sl->b_len = 3;
	sl->status = (p[i] - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0');
	i += 3;
	if (i < n && !is_space((unsigned char)p[i]))
		return -EBADMSG;

	i = skip_spaces(p, n, i);
	sl->c_off = i;
	sl->c_len = n - i;
	while (sl->c_len > 0 && is_space((unsigned char)p[sl->c_off + sl->c_len - 1]))
		sl->c_len--;
	return 0;
}

/* ---------------------------------------------------------------- message */

/* What the request and response parsers share: the header storage of the
 * caller's struct. */
struct msg_out {
	char *text;
	struct rtsp_header *headers;
	int *nheaders;
	int *cseq;
	size_t *content_length;
	const char **body;
	size_t *body_len;
	size_t *total_len;
};

/* Copies the lines of the header section into text, NUL-split: the start
 * line first, then each header as name NUL value NUL. Every line shrinks or
 * keeps its size (its line end pays for the NULs), so the copy never
 * outgrows the section, which is at most RTSP_MAX_HEADER_BYTES. */
static int copy_headers(const char *head, size_t head_len, struct msg_out *m, size_t *start_line_len)
{
	const size_t cap = RTSP_MAX_HEADER_BYTES + 1;
	size_t w = 0;
	size_t pos = 0;
	bool first = true;
	*m->nheaders = 0;

	while (pos < head_len) {
		size_t end = pos;
		while (end < head_len && head[end] != '\r' && head[end] != '\n')
			end++;
		size_t next = end < head_len ? end + line_end_len(head, head_len, end) : head_len;
		struct span line = { head + pos, end - pos };
		pos = next;
		if (line.n == 0)
			break;   /* the blank line: end of the section */

		if (first) {
			if (w + line.n + 1 > cap)
				return -EMSGSIZE;
			memcpy(m->text + w, line.p, line.n);
			m->text[w + line.n] = '\0';
			*start_line_len = line.n;
			w += line.n + 1;
			first = false;
			continue;
		}

		if (is_space((unsigned char)line.p[0])) {
			/* Folded continuation (RFC 2616 §4.2 LWS): append to the
			 * previous value, which ends just before w. */
			if (*m->nheaders == 0)
				return -EBADMSG;
			struct span more = span_trim(line);
			if (more.n == 0)
				continue;
			struct rtsp_header *prev = &m->headers[*m->nheaders - 1];
			size_t dst = w - 1;   /* the NUL that ends the previous value */
			if (prev->value[0] != '\0')
				m->text[dst++] = ' ';
			if (dst + more.n + 1 > cap)
				return -EMSGSIZE;
			memcpy(m->text + dst, more.p, more.n);
			m->text[dst + more.n] = '\0';
			w = dst + more.n + 1;
			continue;
		}

		const char *colon = memchr(line.p, ':', line.n);
		if (colon == NULL)
			return -EBADMSG;
		struct span name = span_trim((struct span){ line.p, (size_t)(colon - line.p) });
		struct span value = span_trim((struct span){ colon + 1, (size_t)(line.p + line.n - colon - 1) });
		if (name.n == 0)
			return -EBADMSG;
		for (size_t i = 0; i < name.n; i++)
			if (!is_token_char((unsigned char)name.p[i]))
				return -EBADMSG;
		if (*m->nheaders >= RTSP_MAX_HEADERS)
			return -EMSGSIZE;
		if (w + name.n + 1 + value.n + 1 > cap)
			return -EMSGSIZE;
		struct rtsp_header *h = &m->headers[(*m->nheaders)++];
		memcpy(m->text + w, name.p, name.n);
		m->text[w + name.n] = '\0';
		h->name = m->text + w;
		w += name.n + 1;
		memcpy(m->text + w, value.p, value.n);
		m->text[w + value.n] = '\0';
		h->value = m->text + w;
		w += value.n + 1;
	}
	return first ? -EBADMSG : 0;
}

static int parse_cseq(const char *value)
{
	unsigned long v;
	if (value == NULL || span_to_uint((struct span){ value, strlen(value) }, 9, INT_MAX, &v) < 0)
		return -1;
	return (int)v;
}

/* Every Content-Length header must hold the same plain decimal: differing
 * copies are how requests get smuggled past proxies. */
static int parse_content_length(const struct rtsp_header *headers, int nheaders, size_t *out)
{
	bool seen = false;
	size_t length = 0;
	for (int i = 0; i < nheaders; i++) {
		if (!str_ieq(headers[i].name, "Content-Length"))
			continue;
		const char *v = headers[i].value;
		if (*v == '\0')
			return -EBADMSG;
		size_t n = 0;
		for (; *v; v++) {
			if (!is_digit((unsigned char)*v))
				return -EBADMSG;
			size_t digit = (size_t)(*v - '0');
			if (n > (SIZE_MAX - digit) / 10)
				return -EMSGSIZE;
			n = n * 10 + digit;
		}
		if (seen && n != length)
			return -EBADMSG;
		seen = true;
		length = n;
	}
	*out = length;
	return 0;
}

enum msg_kind { MSG_REQUEST, MSG_RESPONSE };

/* The common body of the four parse functions. On success fills m and sl
 * (offsets relative to m->text) and returns the message length. */
static int parse_message(const char *buf, size_t len, enum msg_kind kind, bool with_body,
			 struct msg_out *m, struct start_line *sl)
{
	if (buf == NULL && len > 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	int (*parse_start)(const char *, size_t, struct start_line *) =
		kind == MSG_REQUEST ? parse_request_line : parse_status_line;

	struct head_scan scan;
	int r = scan_head(buf, len, &scan);
	if (r < 0)
		return r;
	if (r == 0) {
		/* Reject garbage as soon as its first line is known, rather than
		 * after waiting for 8 KiB that will never parse. */
		if (scan.start_line_len > 0 && parse_start(buf + scan.skip, scan.start_line_len, sl) < 0)
			return -EBADMSG;
		return 0;
	}

	size_t start_line_len = 0;
	r = copy_headers(buf + scan.skip, scan.head_len, m, &start_line_len);
	if (r < 0)
		return r;
	r = parse_start(m->text, start_line_len, sl);
	if (r < 0)
		return r;

	size_t content_length;
	r = parse_content_length(m->headers, *m->nheaders, &content_length);
	if (r < 0)
		return r;
	*m->content_length = content_length;
	*m->cseq = parse_cseq(rtsp_header_find(m->headers, *m->nheaders, "CSeq"));

	size_t head_total = scan.skip + scan.head_len;
	*m->body = NULL;
	*m->body_len = 0;
	if (!with_body || content_length == 0) {
		*m->total_len = head_total;
		return (int)head_total;
	}
	if (content_length > RTSP_MAX_BODY)
		return -EMSGSIZE;
	if (len - head_total < content_length)
		return 0;
	*m->body = buf + head_total;
	*m->body_len = content_length;
	*m->total_len = head_total + content_length;
	return (int)*m->total_len;
}

/* Cuts the start line in text into NUL-terminated parts. The parts are
 * separated by at least one byte of whitespace, so writing a NUL after each
 * never overwrites the next one. */
static const char *cut(char *text, size_t off, size_t n)
{
	text[off + n] = '\0';
	return text + off;
}

static int parse_request(const char *buf, size_t len, struct rtsp_request *req, bool with_body)
{
	if (req == NULL)
		return -EINVAL;
	struct msg_out m = {
		req->text, req->headers, &req->nheaders, &req->cseq, &req->content_length,
		&req->body, &req->body_len, &req->total_len,
	};
	struct start_line sl;
	int r = parse_message(buf, len, MSG_REQUEST, with_body, &m, &sl);
	if (r <= 0)
		return r;
	req->method = cut(req->text, 0, sl.a_len);
	req->uri = cut(req->text, sl.b_off, sl.b_len);
	req->version = cut(req->text, sl.c_off, sl.c_len);
	req->version_major = sl.major;
	req->version_minor = sl.minor;
	return r;
}

int rtsp_parse_request(const char *buf, size_t len, struct rtsp_request *req)
{
	return parse_request(buf, len, req, true);
}

int rtsp_parse_request_head(const char *buf, size_t len, struct rtsp_request *req)
{
	return parse_request(buf, len, req, false);
}

static int parse_response(const char *buf, size_t len, struct rtsp_response *resp, bool with_body)
{
	if (resp == NULL)
		return -EINVAL;
	struct msg_out m = {
		resp->text, resp->headers, &resp->nheaders, &resp->cseq, &resp->content_length,
		&resp->body, &resp->body_len, &resp->total_len,
	};
	struct start_line sl;
	int r = parse_message(buf, len, MSG_RESPONSE, with_body, &m, &sl);
	if (r <= 0)
		return r;
	resp->version = cut(resp->text, 0, sl.a_len);
	resp->status = sl.status;
	/* The reason runs to the end of the line, which is already NUL-terminated;
	 * an absent reason is the empty string at its end. */
	resp->reason = cut(resp->text, sl.c_off, sl.c_len);
	resp->version_major = sl.major;
	resp->version_minor = sl.minor;
	return r;
}

int rtsp_parse_response(const char *buf, size_t len, struct rtsp_response *resp)
{
	return parse_response(buf, len, resp, true);
}

int rtsp_parse_response_head(const char *buf, size_t len, struct rtsp_response *resp)
{
	return parse_response(buf, len, resp, false);
}

const char *rtsp_header_find(const struct rtsp_header *headers, int nheaders, const char *name)
{
	if (headers == NULL || name == NULL)
		return NULL;
	for (int i = 0; i < nheaders; i++)
		if (str_ieq(headers[i].name, name))
			return headers[i].value;
	return NULL;
}

const char *rtsp_header(const struct rtsp_request *req, const char *name)
{
	return req ? rtsp_header_find(req->headers, req->nheaders, name) : NULL;
}

const char *rtsp_response_header(const struct rtsp_response *resp, const char *name)
{
	return resp ? rtsp_header_find(resp->headers, resp->nheaders, name) : NULL;
}

/* ---------------------------------------------------------------- status */

const char *rtsp_reason(int status)
{
	/* RFC 2326 §7.1.1, spelled as there; 463 from RFC 4567. */
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 250: return "Low on Storage Space";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Moved Temporarily";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Time-out";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 414: return "Request-URI Too Large";
	case 415: return "Unsupported Media Type";
	case 409: return "Conflict";
	case 426: return "Upgrade Required";
	case 451: return "Parameter Not Understood";
	case 452: return "Conference Not Found";
	case 453: return "Not Enough Bandwidth";
	case 454: return "Session Not Found";
	case 455: return "Method Not Valid in This State";
	case 456: return "Header Field Not Valid for Resource";
	case 457: return "Invalid Range";
	case 458: return "Parameter Is Read-Only";
	case 459: return "Aggregate operation not allowed";
	case 460: return "Only aggregate operation allowed";
	case 461: return "Unsupported transport";
	case 462: return "Destination unreachable";
	case 463: return "Key management failure";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Time-out";
	case 505: return "RTSP Version not supported";
	case 551: return "Option not supported";
	default:  return "Unknown";
	}
}

int rtsp_response_begin(char *buf, size_t cap, int status, int cseq)
{
	if (status < 100 || status > 999)
		return -EINVAL;
	struct outbuf o = { buf, buf ? cap : 0, 0, false };
	out_printf(&o, "RTSP/1.0 %d %s\r\n", status, rtsp_reason(status));
	if (cseq >= 0)
		out_printf(&o, "CSeq: %d\r\n", cseq);
	return out_finish(&o);
}

/* ---------------------------------------------------------------- Transport */

void rtsp_transport_init(struct rtsp_transport *t)
{
	memset(t, 0, sizeof *t);
	t->profile = RTSP_PROFILE_AVP;
	t->lower = RTSP_LOWER_UDP;
	t->multicast = true;   /* RFC 2326 §12.39: multicast unless unicast is given */
	t->client_port[0] = t->client_port[1] = -1;
	t->server_port[0] = t->server_port[1] = -1;
	t->port[0] = t->port[1] = -1;
	t->interleaved[0] = t->interleaved[1] = -1;
	t->ttl = -1;
}

static struct span span_unquote(struct span s)
{
	s = span_trim(s);
	if (s.n >= 2 && s.p[0] == '"' && s.p[s.n - 1] == '"') {
		s.p++;
		s.n -= 2;
	}
	return s;
}

/* "p" or "p-q", each 0..max; "p" alone means [p, p+1]. */
static int parse_pair(struct span v, int max, int out[2])
{
	unsigned long a, b;
	const char *dash = memchr(v.p, '-', v.n);
	if (dash == NULL) {
		if (span_to_uint(v, 5, (unsigned long)max, &a) < 0 || a + 1 > (unsigned long)max)
			return -EINVAL;
		b = a + 1;
	} else {
		struct span first = span_trim((struct span){ v.p, (size_t)(dash - v.p) });
		struct span second = span_trim((struct span){ dash + 1, (size_t)(v.p + v.n - dash - 1) });
		if (span_to_uint(first, 5, (unsigned long)max, &a) < 0 ||
		    span_to_uint(second, 5, (unsigned long)max, &b) < 0)
			return -EINVAL;
	}
	out[0] = (int)a;
	out[1] = (int)b;
	return 0;
}

/* Host names, IPv4 and IPv6 literals (with or without brackets, with a zone). */
static int copy_address(struct span v, char *dst, size_t cap)
{
	if (v.n >= cap)
		return -EINVAL;
	for (size_t i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (!is_alpha(c) && !is_digit(c) && (c == 0 || !strchr(".:-_%[]", c)))
			return -EINVAL;
	}
	memcpy(dst, v.p, v.n);
	dst[v.n] = '\0';
	return 0;
}

/* "RTP/AVP[/UDP|/TCP]" or "RTP/SAVP[...]". Returns 1 if usable, 0 if not. */
static int parse_transport_protocol(struct span s, struct rtsp_transport *t)
{
	struct span rest = span_trim(s), proto, profile, lower;
	if (!span_next_item(&rest, '/', &proto) || !span_ieq(proto, "RTP"))
		return 0;
	if (!span_next_item(&rest, '/', &profile))
		return 0;
	if (span_ieq(profile, "AVP"))
		t->profile = RTSP_PROFILE_AVP;
	else if (span_ieq(profile, "SAVP"))
		t->profile = RTSP_PROFILE_SAVP;
	else
		return 0;
	if (!span_next_item(&rest, '/', &lower))
		t->lower = RTSP_LOWER_UDP;
	else if (span_ieq(lower, "UDP"))
		t->lower = RTSP_LOWER_UDP;
	else if (span_ieq(lower, "TCP"))
		t->lower = RTSP_LOWER_TCP;
	else
		return 0;
	return rest.p == NULL ? 1 : 0;   /* nothing may follow the lower transport */
}

static int parse_transport_param(struct span param, struct rtsp_transport *t)
{
	struct span name = param, value = { param.p + param.n, 0 };
	const char *eq = memchr(param.p, '=', param.n);
	if (eq != NULL) {
		name = span_trim((struct span){ param.p, (size_t)(eq - param.p) });
		value = span_unquote((struct span){ eq + 1, (size_t)(param.p + param.n - eq - 1) });
	}
	unsigned long v;

	if (span_ieq(name, "unicast")) {
		t->unicast_given = true;
		t->multicast = false;
	} else if (span_ieq(name, "multicast")) {
		t->multicast_given = true;
		t->multicast = true;
	} else if (span_ieq(name, "destination")) {
		if (eq != NULL)
			return copy_address(value, t->destination, sizeof t->destination);
	} else if (span_ieq(name, "source")) {
		if (eq != NULL)
			return copy_address(value, t->source, sizeof t->source);
	} else if (span_ieq(name, "interleaved")) {
		return parse_pair(value, 255, t->interleaved);
	} else if (span_ieq(name, "client_port")) {
		return parse_pair(value, 65535, t->client_port);
	} else if (span_ieq(name, "server_port")) {
		return parse_pair(value, 65535, t->server_port);
	} else if (span_ieq(name, "port")) {
		return parse_pair(value, 65535, t->port);
	} else if (span_ieq(name, "ttl")) {
		if (span_to_uint(value, 3, 255, &v) < 0)
			return -EINVAL;
		t->ttl = (int)v;
	} else if (span_ieq(name, "ssrc")) {
		if (value.n == 0 || value.n > 8)
			return -EINVAL;
		uint32_t ssrc = 0;
		for (size_t i = 0; i < value.n; i++) {
			int h = hex_value((unsigned char)value.p[i]);
			if (h < 0)
				return -EINVAL;
			ssrc = ssrc << 4 | (uint32_t)h;
		}
		t->has_ssrc = true;
		t->ssrc = ssrc;
	} else if (span_ieq(name, "mode")) {
		t->mode_record = span_ieq(value, "RECORD");
	} else if (span_ieq(name, "append")) {
		t->append = true;
	}
	/* Anything else (layers, rtcp-mux, vendor extensions) is ignored (§12.39). */
	return 0;
}

/* Returns 1 for a usable spec stored in t, 0 for an unknown one, -EINVAL. */
static int parse_transport_spec(struct span spec, struct rtsp_transport *t)
{
	struct span rest = spec, item;
	rtsp_transport_init(t);
	span_next_item(&rest, ';', &item);
	if (parse_transport_protocol(item, t) == 0)
		return 0;
	while (span_next_item(&rest, ';', &item)) {
		item = span_trim(item);
		if (item.n == 0)
			continue;
		int r = parse_transport_param(item, t);
		if (r < 0)
			return r;
	}
	return 1;
}

int rtsp_parse_transports(const char *value, struct rtsp_transport *out, int max)
{
	if (value == NULL || (out == NULL && max > 0) || max < 0)
		return -EINVAL;
	struct span rest = { value, strlen(value) }, spec;
	int count = 0;
	bool any = false;
	while (span_next_item(&rest, ',', &spec)) {
		spec = span_trim(spec);
		if (spec.n == 0)
			continue;
		any = true;
		struct rtsp_transport t;
		int r = parse_transport_spec(spec, &t);
		if (r < 0)
			return r;
		if (r > 0 && count < max)
			out[count++] = t;
	}
	return any ? count : -EINVAL;
}

static void out_pair(struct outbuf *o, const char *name, const int pair[2])
{
	if (pair[0] < 0)
		return;
	if (pair[1] < 0)
		out_printf(o, ";%s=%d", name, pair[0]);
	else
		out_printf(o, ";%s=%d-%d", name, pair[0], pair[1]);
}

int rtsp_format_transport(const struct rtsp_transport *t, char *buf, size_t len)
{
	struct outbuf o = { buf, buf ? len : 0, 0, false };
	if (t == NULL)
		return -EINVAL;
	out_printf(&o, "RTP/%s%s;%s",
		   t->profile == RTSP_PROFILE_SAVP ? "SAVP" : "AVP",
		   t->lower == RTSP_LOWER_TCP ? "/TCP" : "",
		   t->multicast ? "multicast" : "unicast");
	/* The address strings are fixed arrays: the precision bounds the read in
	 * case a caller filled one without a terminator. */
	if (t->destination[0])
		out_printf(&o, ";destination=%.*s", (int)sizeof t->destination - 1, t->destination);
	if (t->source[0])
		out_printf(&o, ";source=%.*s", (int)sizeof t->source - 1, t->source);
	out_pair(&o, "interleaved", t->interleaved);
	out_pair(&o, "client_port", t->client_port);
	out_pair(&o, "server_port", t->server_port);
	out_pair(&o, "port", t->port);
	if (t->ttl >= 0)
		out_printf(&o, ";ttl=%d", t->ttl);
	if (t->has_ssrc)
		out_printf(&o, ";ssrc=%08X", (unsigned)t->ssrc);
	if (t->mode_record)
		out_printf(&o, ";mode=\"RECORD\"");
	else if (t->multicast)
		out_printf(&o, ";mode=\"PLAY\"");
	if (t->append)
		out_printf(&o, ";append");
	return out_finish(&o);
}

/* ---------------------------------------------------------------- Range */

/* npt values must stay below this so that they print back with at most the
 * 12 integer digits the parser accepts. */
#define NPT_LIMIT 1e11

/* 1*DIGIT ["." *DIGIT] (max_int_digits integer digits); the whole span. */
static int parse_decimal(struct span s, size_t max_int_digits, double *out)
{
	size_t i = 0;
	double v = 0;
	while (i < s.n && is_digit((unsigned char)s.p[i])) {
		v = v * 10 + (s.p[i] - '0');
		i++;
	}
	if (i == 0 || i > max_int_digits)
		return -EINVAL;
	if (i < s.n && s.p[i] == '.') {
		double scale = 0.1;
		for (i++; i < s.n && is_digit((unsigned char)s.p[i]); i++) {
			v += (s.p[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i != s.n)
		return -EINVAL;
	*out = v;
	return 0;
}

/* npt-time = "now" | npt-sec | npt-hhmmss (§3.6). */
static int parse_npt_time(struct span s, double *out, bool *now)
{
	*now = false;
	if (span_ieq(s, "now")) {
		*now = true;
		*out = 0;
		return 0;
	}
	const char *colon = memchr(s.p, ':', s.n);
	if (colon == NULL) {
		if (parse_decimal(s, 12, out) < 0 || *out >= NPT_LIMIT)
			return -EINVAL;
		return 0;
	}
	/* npt-hh ":" npt-mm ":" npt-ss ["." *DIGIT], mm and ss 1-2 digits < 60 */
	struct span rest = s, hh, mm, ss;
	unsigned long hours, minutes;
	double seconds;
	span_next_item(&rest, ':', &hh);
	if (!span_next_item(&rest, ':', &mm) || !span_next_item(&rest, ':', &ss) || rest.p != NULL)
		return -EINVAL;
	if (span_to_uint(hh, 8, 99999999, &hours) < 0 || span_to_uint(mm, 2, 59, &minutes) < 0)
		return -EINVAL;
	if (parse_decimal(ss, 2, &seconds) < 0 || seconds >= 60)
		return -EINVAL;
	*out = (double)hours * 3600 + (double)minutes * 60 + seconds;
	if (*out >= NPT_LIMIT)
		return -EINVAL;
	return 0;
}

/* Seconds from the epoch to 0000-01-01 and to 10000-01-01: clock values
 * outside cannot be written with the 4-digit year of §3.7. */
#define CLOCK_FIRST -62167219200.0
#define CLOCK_LIMIT 253402300800.0

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static unsigned digits_value(const char *p, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	return v;
}

/* utc-time = 8DIGIT "T" 6DIGIT ["." 1*DIGIT] "Z" (§3.7); the Z is optional
 * here, since some clients leave it out and UTC is the only meaning. */
static int parse_clock_time(struct span s, double *out)
{
	if (s.n > 0 && (s.p[s.n - 1] == 'Z' || s.p[s.n - 1] == 'z'))
		s.n--;
	if (s.n < 15 || (s.p[8] != 'T' && s.p[8] != 't'))
		return -EINVAL;
	for (size_t i = 0; i < 15; i++)
		if (i != 8 && !is_digit((unsigned char)s.p[i]))
			return -EINVAL;
	unsigned year = digits_value(s.p, 4), month = digits_value(s.p + 4, 2);
	unsigned day = digits_value(s.p + 6, 2), hour = digits_value(s.p + 9, 2);
	unsigned minute = digits_value(s.p + 11, 2), second = digits_value(s.p + 13, 2);
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
	    hour > 23 || minute > 59 || second > 60)   /* 60: leap second */
		return -EINVAL;
	double fraction = 0;
	if (s.n > 15) {
		struct span frac = { s.p + 15, s.n - 15 };
		if (frac.n < 2 || frac.p[0] != '.')
			return -EINVAL;
		for (size_t i = 1; i < frac.n; i++)
			if (!is_digit((unsigned char)frac.p[i]))
				return -EINVAL;
		double scale = 0.1;
		for (size_t i = 1; i < frac.n; i++, scale /= 10)
			fraction += (frac.p[i] - '0') * scale;
	}
	long long days = days_from_civil(year, month, day);
	*out = (double)(days * 86400 + hour * 3600 + minute * 60 + second) + fraction;
	/* A leap second on 9999-12-31 would print as year 10000. */
	if (*out >= CLOCK_LIMIT)
		return -EINVAL;
	return 0;
}

/* smpte-time = 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT [":" 1*2DIGIT] ["." 1*2DIGIT] */
static int parse_smpte_time(struct span s, unsigned fps, double *out)
{
	struct span rest = s, field;
	unsigned long value[4] = { 0, 0, 0, 0 };
	unsigned long subframes = 0;
	int nfields = 0;
	const char *dot = memchr(s.p, '.', s.n);
	if (dot != NULL) {
		struct span sub = { dot + 1, (size_t)(s.p + s.n - dot - 1) };
		if (span_to_uint(sub, 2, 99, &subframes) < 0)
			return -EINVAL;
		rest.n = (size_t)(dot - s.p);
	}
	while (span_next_item(&rest, ':', &field)) {
		if (nfields == 4 || span_to_uint(field, 2, 99, &value[nfields]) < 0)
			return -EINVAL;
		nfields++;
	}
	if (nfields < 3 || value[1] > 59 || value[2] > 59 || value[3] >= fps)
		return -EINVAL;
	*out = (double)(value[0] * 3600 + value[1] * 60 + value[2]) +
	       ((double)value[3] + (double)subframes / 100) / fps;
	return 0;
}

int rtsp_parse_range(const char *value, struct rtsp_range *r)
{
	if (value == NULL || r == NULL)
		return -EINVAL;
	memset(r, 0, sizeof *r);
	struct span rest = { value, strlen(value) }, spec;
	span_next_item(&rest, ';', &spec);   /* ";time=..." and later parameters are ignored */
	spec = span_trim(spec);

	const char *eq = memchr(spec.p, '=', spec.n);
	if (eq == NULL)
		return -EINVAL;
	struct span unit = span_trim((struct span){ spec.p, (size_t)(eq - spec.p) });
	struct span times = span_trim((struct span){ eq + 1, (size_t)(spec.p + spec.n - eq - 1) });
	unsigned smpte_fps = 0;
	if (span_ieq(unit, "npt"))
		r->kind = RTSP_RANGE_NPT;
	else if (span_ieq(unit, "clock"))
		r->kind = RTSP_RANGE_CLOCK;
	else if (span_ieq(unit, "smpte") || span_ieq(unit, "smpte-30-drop")) {
		r->kind = RTSP_RANGE_SMPTE;
		smpte_fps = 30;
	} else if (span_ieq(unit, "smpte-25")) {
		r->kind = RTSP_RANGE_SMPTE;
		smpte_fps = 25;
	} else {
		if (unit.n == 0)
			return -EINVAL;
		for (size_t i = 0; i < unit.n; i++)
			if (!is_token_char((unsigned char)unit.p[i]))
				return -EINVAL;
		return -ENOTSUP;
	}

	/* No unit's time syntax contains '-', so the first one separates. */
	const char *dash = memchr(times.p, '-', times.n);
	if (dash == NULL)
		return -EINVAL;
	struct span first = span_trim((struct span){ times.p, (size_t)(dash - times.p) });
	struct span second = span_trim((struct span){ dash + 1, (size_t)(times.p + times.n - dash - 1) });
	if (first.n == 0 && second.n == 0)
		return -EINVAL;
	bool end_now = false;
	int ret = 0;

	switch (r->kind) {
	case RTSP_RANGE_NPT:
		/* "-20" means from the beginning to 20 s (§3.6). */
		if (first.n > 0)
			ret = parse_npt_time(first, &r->start, &r->start_now);
		if (ret == 0 && second.n > 0) {
			ret = parse_npt_time(second, &r->end, &end_now);
			if (end_now)
				ret = -EINVAL;
			r->has_end = true;
		}
		break;
	case RTSP_RANGE_CLOCK:
		if (first.n == 0)
			return -EINVAL;
		ret = parse_clock_time(first, &r->start);
		if (ret == 0 && second.n > 0) {
			ret = parse_clock_time(second, &r->end);
			r->has_end = true;
		}
		break;
	case RTSP_RANGE_SMPTE:
		if (first.n == 0)
			return -EINVAL;
		ret = parse_smpte_time(first, smpte_fps, &r->start);
		if (ret == 0 && second.n > 0) {
			ret = parse_smpte_time(second, smpte_fps, &r->end);
			r->has_end = true;
		}
		break;
	}
	return ret;
}

/* x in whole milliseconds, rounded to the nearest (x*1000 is rarely exact:
 * 235.27 s is 235269.99999... ms), but below limit_ms so that the printed
 * value stays one the parser accepts. x is known finite and small enough
 * for long long. */
static long long round_millis(double x, long long limit_ms)
{
	double scaled = x * 1000;
	long long ms = scaled >= 0 ? (long long)(scaled + 0.5) : -(long long)(-scaled + 0.5);
	return ms < limit_ms ? ms : limit_ms - 1;
}

static int out_clock(struct outbuf *o, double t)
{
	/* Years 0000..9999, the range parse_clock_time() reads. */
	if (!(t >= CLOCK_FIRST && t < CLOCK_LIMIT))
		return -EINVAL;
	long long ms = round_millis(t, (long long)CLOCK_LIMIT * 1000);
	long long secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	unsigned millis = (unsigned)(ms - secs * 1000);
	long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	long long in_day = secs - days * 86400;
	long long y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	out_printf(o, "%04lld%02u%02uT%02lld%02lld%02lld", y, m, d,
		   in_day / 3600, in_day / 60 % 60, in_day % 60);
	if (millis)
		out_printf(o, ".%03u", millis);
	out_printf(o, "Z");
	return 0;
}

static int out_npt(struct outbuf *o, double t)
{
	if (!(t >= 0 && t < NPT_LIMIT))
		return -EINVAL;
	long long ms = round_millis(t, (long long)NPT_LIMIT * 1000);
	out_printf(o, "%lld.%03lld", ms / 1000, ms % 1000);
	return 0;
}

/* h:mm:ss[:ff[.ss]] at 30 frames per second, to a hundredth of a frame. */
static int out_smpte(struct outbuf *o, double t)
{
	const long long per_second = 30 * 100;
	const long long limit = 100LL * 3600 * per_second;   /* 100:00:00 does not fit 1*2DIGIT */
	if (!(t >= 0 && t < 100 * 3600.0))
		return -EINVAL;
	long long ticks = (long long)(t * (double)per_second + 0.5);
	if (ticks >= limit)
		ticks = limit - 1;
	long long secs = ticks / per_second;
	unsigned frames = (unsigned)(ticks % per_second / 100);
	unsigned subframes = (unsigned)(ticks % 100);
	out_printf(o, "%lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
	if (frames || subframes)
		out_printf(o, ":%02u", frames);
	if (subframes)
		out_printf(o, ".%02u", subframes);
	return 0;
}

int rtsp_format_range(const struct rtsp_range *r, char *buf, size_t len)
{
	struct outbuf o = { buf, buf ? len : 0, 0, false };
	int ret = 0;
	if (r == NULL)
		return -EINVAL;
	switch (r->kind) {
	case RTSP_RANGE_NPT:
		out_printf(&o, "npt=");
		if (r->start_now)
			out_printf(&o, "now");
		else
			ret = out_npt(&o, r->start);
		out_printf(&o, "-");
		if (ret == 0 && r->has_end)
			ret = out_npt(&o, r->end);
		break;
	case RTSP_RANGE_CLOCK:
		out_printf(&o, "clock=");
		ret = out_clock(&o, r->start);
		out_printf(&o, "-");
		if (ret == 0 && r->has_end)
			ret = out_clock(&o, r->end);
		break;
	case RTSP_RANGE_SMPTE:
		out_printf(&o, "smpte=");
		ret = out_smpte(&o, r->start);
		out_printf(&o, "-");
		if (ret == 0 && r->has_end)
			ret = out_smpte(&o, r->end);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret < 0) {
		if (buf && len)
			buf[0] = '\0';
		return ret;
	}
	return out_finish(&o);
}

/* ---------------------------------------------------------------- Session, Require */

static bool is_session_id_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '$' || c == '-' || c == '_' || c == '.' || c == '+';
}

int rtsp_parse_session(const char *value, char *id, size_t idlen)
{
	if (value == NULL || id == NULL)
		return -EINVAL;
	struct span rest = { value, strlen(value) }, sid;
	span_next_item(&rest, ';', &sid);
	sid = span_trim(sid);
	if (sid.n == 0)
		return -EINVAL;
	for (size_t i = 0; i < sid.n; i++)
		if (!is_session_id_char((unsigned char)sid.p[i]))
			return -EINVAL;
	if (sid.n >= idlen)
		return -ENOSPC;
	memcpy(id, sid.p, sid.n);
	id[sid.n] = '\0';
	return 0;
}

int rtsp_session_timeout(const char *value)
{
	if (value == NULL)
		return -EINVAL;
	struct span rest = { value, strlen(value) }, item;
	span_next_item(&rest, ';', &item);   /* the id */
	while (span_next_item(&rest, ';', &item)) {
		const char *eq = memchr(item.p, '=', item.n);
		if (eq == NULL)
			continue;
		struct span name = span_trim((struct span){ item.p, (size_t)(eq - item.p) });
		struct span num = span_trim((struct span){ eq + 1, (size_t)(item.p + item.n - eq - 1) });
		if (!span_ieq(name, "timeout"))
			continue;
		unsigned long v;
		if (span_to_uint(num, 9, 999999999, &v) < 0)
			return -EINVAL;
		return (int)v;
	}
	return -ENOENT;
}

int rtsp_require_foreach(const char *value,
			 int (*cb)(const char *tag, size_t taglen, void *arg), void *arg)
{
	if (value == NULL || cb == NULL)
		return -EINVAL;
	/* Option tags are tokens (§3.8): a plain split, quotes mean nothing here. */
	const char *p = value;
	for (;;) {
		size_t n = strcspn(p, ",");
		struct span tag = span_trim((struct span){ p, n });
		const char *next = p[n] == ',' ? p + n + 1 : NULL;
		if (tag.n > 0) {
			int r = cb(tag.p, tag.n, arg);
			if (r != 0)
				return r;
		}
		if (next == NULL)
			return 0;
		p = next;
	}
}
