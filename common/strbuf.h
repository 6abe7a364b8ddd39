/* strbuf.h — a growable text buffer for answers that are built piece by
 * piece (rtspctl status tables and JSON, reload reports).
 *
 * Ownership: the caller owns the struct; strbuf_free() releases its memory.
 * Appending never fails visibly: on allocation failure the buffer stops
 * growing and `failed` is set, so callers check once at the end. The text is
 * always NUL-terminated once anything was appended.
 */
#ifndef RTSPD_STRBUF_H
#define RTSPD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, cap;
	bool failed;
};

void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_append(struct strbuf *sb, const char *s, size_t len);
/* A JSON string literal, quotes included; bytes below 0x20, '"' and '\\'
 * escaped, other bytes copied (the input is expected to be UTF-8). */
void strbuf_json_str(struct strbuf *sb, const char *s);
const char *strbuf_str(const struct strbuf *sb);   /* "" when empty */
void strbuf_free(struct strbuf *sb);

#endif
