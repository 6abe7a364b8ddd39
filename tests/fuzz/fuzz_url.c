/* fuzz_url.c — libFuzzer target for RTSP URL parsing (proto/url.c).
 *
 * Beyond "no crash, no sanitizer report" it checks what the server relies on
 * when it maps a URL onto a file: an accepted path never starts or ends with
 * '/', has no empty, "." or ".." segment, no backslash and no control byte;
 * every field is terminated inside its array.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"

#include "proto/url.h"


static void check_path(const char *path)
{
	size_t n = strlen(path);
	if (n == 0)
		return;
	CHECK(path[0] != '/' && path[n - 1] != '/');
	CHECK(strstr(path, "//") == NULL);
	CHECK(strchr(path, '\\') == NULL);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)path[i] >= 0x20 && (unsigned char)path[i] != 0x7f);
	const char *seg = path;
	for (;;) {
		size_t len = strcspn(seg, "/");
		CHECK(!(len == 1 && seg[0] == '.'));
		CHECK(!(len == 2 && seg[0] == '.' && seg[1] == '.'));
		if (seg[len] == '\0')
			break;
		seg += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rtsp_url u;
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	int r = rtsp_url_parse(s, &u);
	CHECK(r == 0 || r == -EINVAL);
	if (r == 0) {
		CHECK(memchr(u.scheme, '\0', sizeof u.scheme) != NULL);
		CHECK(memchr(u.host, '\0', sizeof u.host) != NULL);
		CHECK(memchr(u.path, '\0', sizeof u.path) != NULL);
		CHECK(memchr(u.query, '\0', sizeof u.query) != NULL);
		CHECK(u.port >= -1 && u.port <= 65535);
		CHECK(u.track >= -1);
		check_path(u.path);
		size_t qlen = strlen(u.query);
		CHECK(qlen == 0 || u.query[qlen - 1] != '/');
		if (u.asterisk)
			CHECK(strcmp(s, "*") == 0);
		/* The path of an accepted URL is itself accepted as an abs_path
		 * when it needs no escaping, and comes back unchanged. */
		if (strpbrk(u.path, "%?# ") == NULL && u.track < 0) {
			static struct rtsp_url again;
			char abs[sizeof u.path + 1];
			snprintf(abs, sizeof abs, "/%s", u.path);
			CHECK(rtsp_url_parse(abs, &again) == 0);
			CHECK(strcmp(again.path, u.path) == 0);
		}

		char val[64];
		int q = url_query_get(u.query, "mode", val, sizeof val);
		CHECK(q == 0 || q == -ENOENT || q == -ENOSPC || q == -EINVAL);
		if (q == 0)
			CHECK(strlen(val) < sizeof val);
	}

	/* The raw input as a query string too, with a key taken from it. */
	char key[8] = "";
	if (size > 0)
		snprintf(key, sizeof key, "%.*s", (int)(data[0] % 7), size > 1 ? s + 1 : "");
	char val[32];
	int q = url_query_get(s, key, val, sizeof val);
	CHECK(q == 0 || q == -ENOENT || q == -ENOSPC || q == -EINVAL);
	free(s);
	return 0;
}
