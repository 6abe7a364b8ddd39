/* url.c — RTSP URL parsing (see url.h). */
#include "proto/url.h"
#include "proto/ascii.h"

#include <errno.h>
#include <string.h>


/* Bytes never allowed raw in a URL we route on: controls, space and DEL. */
static bool is_raw_forbidden(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

/* Reads the byte at src[*i], decoding a %XX escape, and moves *i past it.
 * Rejects a malformed escape and a decoded NUL. */
static int next_decoded(const char *src, size_t n, size_t *i, unsigned char *out)
{
	unsigned char c = (unsigned char)src[*i];
	if (c != '%') {
		*out = c;
		(*i)++;
		return 0;
	}
	if (n - *i < 3)
		return -EINVAL;
	int hi = hex_value((unsigned char)src[*i + 1]);
	int lo = hex_value((unsigned char)src[*i + 2]);
	if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
		return -EINVAL;
	*out = (unsigned char)(hi << 4 | lo);
	*i += 3;
	return 0;
}

/* Percent-decodes src[0..n) into dst (cap bytes, NUL included). */
static int percent_decode(const char *src, size_t n, char *dst, size_t cap)
{
	size_t w = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c;
		if (next_decoded(src, n, &i, &c) < 0)
			return -EINVAL;
		if (w + 1 >= cap)
			return -ENOSPC;
		dst[w++] = (char)c;
	}
	if (cap == 0)
		return -ENOSPC;
	dst[w] = '\0';
	return 0;
}

/* "trackID=N", "trackid=N", "track=N", "streamid=N" with 1..9 digits:
 * returns N, or -1 if seg is something else. */
static int match_track(const char *seg, size_t n)
{
	static const char *const keys[] = { "trackid", "track", "streamid" };
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		size_t klen = strlen(keys[k]);
		if (n < klen + 2 || seg[klen] != '=')
			continue;
		bool same = true;
		for (size_t i = 0; i < klen && same; i++)
			same = to_lower((unsigned char)seg[i]) == keys[k][i];
		if (!same)
			continue;
		size_t digits = n - klen - 1;
		if (digits > 9)
			return -1;
		int v = 0;
		for (size_t i = klen + 1; i < n; i++) {
			if (!is_digit((unsigned char)seg[i]))
				return -1;
			v = v * 10 + (seg[i] - '0');
		}
		return v;
	}
	return -1;
}

static bool is_host_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

static int parse_port(const char *p, size_t n, int *port)
{
	if (n == 0)
		return 0;   /* "host:" is legal and means the default port (RFC 3986 §3.2.3) */
	if (n > 5)
		return -EINVAL;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)p[i]))
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/* authority = [ userinfo "@" ] host [ ":" port ] */
static int parse_authority(const char *a, size_t n, struct rtsp_url *u)
{
	/* The user info ends at the LAST '@': a password may contain a raw '@'. */
	for (size_t i = n; i > 0; i--) {
		if (a[i - 1] == '@') {
			a += i;
			n -= i;
			break;
		}
	}
	const char *host;
	size_t host_len;
	const char *rest;
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (close == NULL)
			return -EINVAL;
		host = a + 1;
		host_len = (size_t)(close - host);
		for (size_t i = 0; i < host_len; i++) {
			unsigned char c = (unsigned char)host[i];
			/* hex, ':' and '.', and a zone id after "%25" (RFC 6874) */
			if (!is_host_char(c) && c != ':')
				return -EINVAL;
		}
		rest = close + 1;
	} else {
		const char *colon = memchr(a, ':', n);
		host = a;
		host_len = colon ? (size_t)(colon - a) : n;
		for (size_t i = 0; i < host_len; i++)
			if (!is_host_char((unsigned char)host[i]))
				return -EINVAL;
		rest = a + host_len;
	}
	size_t rest_len = (size_t)(a + n - rest);
	if (host_len == 0 || host_len >= sizeof u->host)
		return -EINVAL;
	memcpy(u->host, host, host_len);
	u->host[host_len] = '\0';
	if (rest_len == 0)
		return 0;
	if (rest[0] != ':')
		return -EINVAL;
	return parse_port(rest + 1, rest_len - 1, &u->port);
}

static bool is_dot_segment(const char *seg, size_t n)
{
	return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/* Decodes the raw path into u->path segment by segment: empty segments are
 * dropped (so leading, trailing and repeated '/' vanish and only the bytes
 * kept count against the size), and the segments that climb the tree are
 * refused. A decoded '/' separates like a raw one, so "%2e%2e%2f" is caught
 * too. Control bytes and backslashes, raw or decoded, have no place in a
 * file name. */
static int build_path(const char *raw, size_t n, struct rtsp_url *u)
{
	const size_t cap = sizeof u->path;
	size_t w = 0, seg = 0;
	bool in_segment = false;
	for (size_t i = 0; i < n;) {
		if (is_raw_forbidden((unsigned char)raw[i]))
			return -EINVAL;
		unsigned char c;
		if (next_decoded(raw, n, &i, &c) < 0)
			return -EINVAL;
		if (c < 0x20 || c == 0x7f || c == '\\')
			return -EINVAL;
		if (c == '/') {
			if (in_segment && is_dot_segment(u->path + seg, w - seg))
				return -EINVAL;
			in_segment = false;
			continue;
		}
		if (!in_segment) {
			if (w > 0) {
				if (w + 1 >= cap)
					return -EINVAL;
				u->path[w++] = '/';
			}
			seg = w;
			in_segment = true;
		}
		if (w + 1 >= cap)
			return -EINVAL;
		u->path[w++] = (char)c;
	}
	if (in_segment && is_dot_segment(u->path + seg, w - seg))
		return -EINVAL;
	u->path[w] = '\0';

	/* seg is where the last non-empty segment starts (0 for an empty path). */
	if (u->track < 0 && w > seg) {
		int track = match_track(u->path + seg, w - seg);
		if (track >= 0) {
			u->track = track;
			u->path[seg > 0 ? seg - 1 : 0] = '\0';
		}
	}
	return 0;
}

/* Copies the raw query without its trailing '/'s and without a trailing
 * "/trackID=N" (whose number goes to u->track). */
static int build_query(const char *raw, size_t n, struct rtsp_url *u)
{
	for (size_t i = 0; i < n; i++)
		if (is_raw_forbidden((unsigned char)raw[i]))
			return -EINVAL;
	while (n > 0 && raw[n - 1] == '/')
		n--;
	for (size_t i = n; i > 0; i--) {
		if (raw[i - 1] != '/')
			continue;
		int track = match_track(raw + i, n - i);
		if (track >= 0) {
			u->track = track;
			n = i - 1;
			while (n > 0 && raw[n - 1] == '/')
				n--;
		}
		break;
	}
	if (n >= sizeof u->query)
		return -EINVAL;
	memcpy(u->query, raw, n);
	u->query[n] = '\0';
	return 0;
}

int rtsp_url_parse(const char *uri, struct rtsp_url *u)
{
	if (uri == NULL || u == NULL)
		return -EINVAL;
	memset(u, 0, sizeof *u);
	u->port = -1;
	u->track = -1;
	if (strcmp(uri, "*") == 0) {
		u->asterisk = true;
		return 0;
	}

	const char *p = uri;
	if (*p != '/') {
		/* scheme "://" authority */
		size_t i = 0;
		if (!is_alpha((unsigned char)p[0]))
			return -EINVAL;
		while (is_alpha((unsigned char)p[i]) || is_digit((unsigned char)p[i]) ||
		       p[i] == '+' || p[i] == '-' || p[i] == '.')
			i++;
		if (strncmp(p + i, "://", 3) != 0 || i >= sizeof u->scheme)
			return -EINVAL;
		for (size_t k = 0; k < i; k++)
			u->scheme[k] = to_lower((unsigned char)p[k]);
		u->scheme[i] = '\0';
		p += i + 3;
		size_t auth_len = strcspn(p, "/?#");
		if (parse_authority(p, auth_len, u) < 0)
			return -EINVAL;
		p += auth_len;
	}

	size_t path_len = strcspn(p, "?#");
	const char *query = NULL;
	size_t query_len = 0;
	if (p[path_len] == '?') {
		query = p + path_len + 1;
		query_len = strcspn(query, "#");
	}
	/* The query is looked at first: when both carry a track suffix, the
	 * one appended last (after the query) is the one the client meant. */
	if (query != NULL && build_query(query, query_len, u) < 0)
		return -EINVAL;
	if (build_path(p, path_len, u) < 0)
		return -EINVAL;
	return 0;
}

int url_query_get(const char *query, const char *key, char *val, size_t vlen)
{
	if (query == NULL || key == NULL)
		return -EINVAL;
	size_t key_len = strlen(key);
	const char *item = query;
	for (;;) {
		size_t item_len = strcspn(item, "&");
		const char *eq = memchr(item, '=', item_len);
		size_t name_len = eq ? (size_t)(eq - item) : item_len;
		bool same = name_len == key_len && name_len > 0;
		for (size_t i = 0; i < name_len && same; i++)
			same = to_lower((unsigned char)item[i]) == to_lower((unsigned char)key[i]);
		if (same) {
			const char *value = eq ? eq + 1 : item + item_len;
			size_t value_len = (size_t)(item + item_len - value);
			if (val == NULL || vlen == 0)
				return -ENOSPC;
			return percent_decode(value, value_len, val, vlen);
		}
		if (item[item_len] == '\0')
			return -ENOENT;
		item += item_len + 1;
	}
}
