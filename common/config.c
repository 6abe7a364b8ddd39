/* config.c — the rtspserver.cfg parser.
 *
 * libxml2 turns the file into a tree (no network, no entity expansion); then
 * one table per kind of element says which child nodes it may contain, what
 * type each one is, its range and where in the struct it goes. A node that is
 * in no table is an error, so a typo never silently becomes a default.
 *
 * Every check that fails produces one line, "FILE:LINE: <node>: what is
 * wrong", and the whole load fails: the caller never sees a half-read
 * configuration.
 */
#include "common/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Upper bounds on the repeatable nodes. Real configurations have a handful;
 * the bounds keep a hostile file from making us allocate without end. */
#define MAX_USERS   4096
#define MAX_OUTPUTS 1024
#define MAX_PROXIES 1024
#define MAX_PUSHERS 1024

/* How much of a bad value a message quotes. */
#define QUOTE_MAX 48

/* Longest node name a message prints; XML allows names of any length. */
#define NAME_MAX_PRINT 64

/* ------------------------------------------------------------------ */
/* Parse state and error reporting                                     */

struct parse {
	const char *label;          /* the file's name in messages */
	char *err;
	size_t errlen;
	struct rtspd_config *cfg;
};

static long node_line(const xmlNode *n)
{
	long line = n ? xmlGetLineNo(n) : 0;
	return line > 0 ? line : 0;
}

static const char *node_name(const xmlNode *n)
{
	return (const char *)n->name;
}

__attribute__((format(printf, 5, 0)))
static int vfail_at(struct parse *p, int rc, long line, const char *node, const char *fmt, va_list ap)
{
	if (!p->err || p->errlen == 0)
		return rc;
	int used;
	if (line <= 0)     /* about the whole file */
		used = snprintf(p->err, p->errlen, "%s: ", p->label);
	else if (node)
		used = snprintf(p->err, p->errlen, "%s:%ld: <%.*s>: ", p->label, line, NAME_MAX_PRINT, node);
	else
		used = snprintf(p->err, p->errlen, "%s:%ld: ", p->label, line);
	if (used >= 0 && (size_t)used < p->errlen)
		vsnprintf(p->err + used, p->errlen - (size_t)used, fmt, ap);
	return rc;
}

/* Report a problem at `line` (0: the whole file) about the node called
 * `node` (may be NULL). */
__attribute__((format(printf, 4, 5)))
static int fail_at(struct parse *p, long line, const char *node, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail_at(p, -EINVAL, line, node, fmt, ap);
	va_end(ap);
	return rc;
}

/* Report a problem with element n, at its line. */
__attribute__((format(printf, 3, 4)))
static int fail(struct parse *p, const xmlNode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail_at(p, -EINVAL, node_line(n), node_name(n), fmt, ap);
	va_end(ap);
	return rc;
}

/* A failure that is not -EINVAL, about the whole file. */
__attribute__((format(printf, 3, 4)))
static int fail_file(struct parse *p, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(p, rc, 0, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

static int out_of_memory(struct parse *p)
{
	return fail_file(p, -ENOMEM, "out of memory");
}

/* A value as messages show it: at most QUOTE_MAX bytes, and anything that
 * would break the one-line message replaced by '?'. */
struct quoted { char s[QUOTE_MAX + 4]; };

static struct quoted quote(const char *value)
{
	struct quoted q;
	size_t i = 0;
	for (; value[i] && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)value[i];
		q.s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (value[i])
		memcpy(q.s + i, "...", 3), i += 3;
	q.s[i] = '\0';
	return q;
}

/* ------------------------------------------------------------------ */
/* libxml2 error capture                                               */

/* libxml2 prints its errors on stderr unless told otherwise; we keep the
 * first error instead and put it in our own one-line message. */
struct xml_error_capture {
	bool seen;
	long line;
	char message[160];
};

static void capture_xml_error(void *ctx, xmlErrorPtr e)
{
	struct xml_error_capture *cap = ctx;
	if (!e || e->level < XML_ERR_ERROR || cap->seen)
		return;
	cap->seen = true;
	cap->line = e->line > 0 ? e->line : 0;
	const char *msg = e->message ? e->message : "malformed XML";
	size_t n = 0;
	for (; msg[n] && n + 1 < sizeof cap->message; n++) {
		unsigned char c = (unsigned char)msg[n];
		cap->message[n] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (n > 0 && cap->message[n - 1] == ' ')
		n--;
	cap->message[n] = '\0';
}

static void ignore_generic_error(void *ctx, const char *msg, ...)
{
}

/* ------------------------------------------------------------------ */
/* Node tables                                                         */

enum value_kind {
	V_INT,          /* int, decimal, within [min, max] */
	V_BOOL,         /* bool: 0/1 true/false yes/no on/off */
	V_STR,          /* char[size], length-checked */
	V_ENUM,         /* an enum, from `names` */
	V_VCODEC,       /* char[32], a video codec stored in its canonical spelling */
	V_ACODEC,       /* char[32], an audio codec likewise */
	V_GROUP,        /* a single nested element, read by `group` */
	V_LIST,         /* a repeatable nested element, read by `group` */
};

struct enum_name {
	const char *name;
	int value;
	bool alias;     /* accepted, but not listed in messages */
};

struct scope;
struct node_spec {
	const char *name;
	enum value_kind kind;
	size_t offset;                  /* of the field in the struct being filled */
	size_t size;                    /* of that field */
	long long min, max;             /* V_INT */
	const struct enum_name *names;  /* V_ENUM, terminated by a NULL name */
	int (*check_int)(struct parse *p, const xmlNode *n, long long value);
	int (*check_str)(struct parse *p, const xmlNode *n, const char **value);
	int (*group)(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc);
	unsigned flags;
};

/* The top-level <rtsp_port> that is Happytime's RTSPS port when it follows
 * <rtsp_enable> and the plain port is already set. */
#define F_HAPPYTIME_RTSP_PORT 1u
/* Not recorded for the duplicate check (its children are). */
#define F_NOT_RECORDED        2u

/* Where a node's value goes. The pointer comparison inside sizeof is never
 * evaluated; it makes the compiler reject an entry whose field is not of the
 * C type that the entry's kind writes. */
#define AT(type, member, ptrtype) \
	.offset = offsetof(type, member) + 0 * sizeof(&((type *)0)->member == (ptrtype)0), \
	.size = sizeof(((type *)0)->member)
#define AT_STR(type, member) \
	AT(type, member, char (*)[sizeof(((type *)0)->member)])
#define AT_ANY(type, member) \
	.offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

#define N_INT(nm, type, member, lo, hi) \
	.name = nm, .kind = V_INT, AT(type, member, int *), .min = (lo), .max = (hi)
#define N_BOOL(nm, type, member) \
	.name = nm, .kind = V_BOOL, AT(type, member, bool *)
#define N_STR(nm, type, member) \
	.name = nm, .kind = V_STR, AT_STR(type, member)
#define N_ENUM(nm, type, member, table) \
	.name = nm, .kind = V_ENUM, AT_ANY(type, member), .names = (table)
#define N_VCODEC(nm, type, member) \
	.name = nm, .kind = V_VCODEC, AT_STR(type, member)
#define N_ACODEC(nm, type, member) \
	.name = nm, .kind = V_ACODEC, AT_STR(type, member)
#define N_GROUP(nm, type, member, fn) \
	.name = nm, .kind = V_GROUP, AT_ANY(type, member), .group = (fn)
#define N_LIST(nm, fn) \
	.name = nm, .kind = V_LIST, .group = (fn)

#define PORT_MIN 1
#define PORT_MAX 65535

/* Which nodes of one element were given, for the duplicate check and for
 * pointing cross-field errors at the right line. Two nodes that fill the
 * same field (aliases such as <serverport> and <rtsp_port>) share an entry. */
struct seen_node {
	size_t offset, size;
	long line;
	const char *name;       /* as spelled in the file */
};

#define SCOPE_MAX_SEEN 48

struct scope {
	struct seen_node seen[SCOPE_MAX_SEEN];
	int nseen;
};

static const struct seen_node *find_seen(const struct scope *sc, size_t offset, size_t size)
{
	for (int i = 0; i < sc->nseen; i++)
		if (sc->seen[i].offset == offset && sc->seen[i].size == size)
			return &sc->seen[i];
	return NULL;
}

#define SEEN(sc, type, member) find_seen((sc), offsetof(type, member), sizeof(((type *)0)->member))

/* Blame the node that set a field if it was given, else the element `n`. */
__attribute__((format(printf, 4, 5)))
static int fail_seen(struct parse *p, const struct seen_node *s, const xmlNode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = s ? vfail_at(p, -EINVAL, s->line, s->name, fmt, ap)
		   : vfail_at(p, -EINVAL, node_line(n), node_name(n), fmt, ap);
	va_end(ap);
	return rc;
}

static int record_seen(struct parse *p, struct scope *sc, const struct node_spec *s, const xmlNode *n)
{
	const struct seen_node *prev = find_seen(sc, s->offset, s->size);
	if (prev) {
		if (strcmp(prev->name, node_name(n)) == 0)
			return fail(p, n, "given twice (first at line %ld)", prev->line);
		return fail(p, n, "already set by <%.*s> at line %ld",
			    NAME_MAX_PRINT, prev->name, prev->line);
	}
	/* Cannot overflow: entries are distinct fields of one table (asserted
	 * by the table sizes below), but stay safe if a table ever grows. */
	if (sc->nseen == SCOPE_MAX_SEEN)
		return fail(p, n, "too many different nodes");
	sc->seen[sc->nseen++] = (struct seen_node){
		.offset = s->offset, .size = s->size, .line = node_line(n), .name = node_name(n),
	};
	return 0;
}

/* ------------------------------------------------------------------ */
/* Value readers                                                       */

static bool is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_blank(const xmlChar *s)
{
	for (; s && *s; s++)
		if (!is_xml_space((char)*s))
			return false;
	return true;
}

/* The value of a leaf element: its text and CDATA joined, surrounding white
 * space removed. *out is malloc'd. Entity references are refused rather
 * than expanded, so no file can make us expand entities without bound. */
static int leaf_value(struct parse *p, const xmlNode *n, char **out)
{
	size_t total = 0;
	for (const xmlNode *c = n->children; c; c = c->next) {
		switch (c->type) {
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (c->content)
				total += strlen((const char *)c->content);
			break;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		case XML_ELEMENT_NODE:
			return fail(p, n, "expected a value, found the node <%.*s>",
				    NAME_MAX_PRINT, node_name(c));
		case XML_ENTITY_REF_NODE:
			return fail(p, n, "entity references (&%.*s;) are not supported",
				    NAME_MAX_PRINT, node_name(c));
		default:
			return fail(p, n, "unexpected content");
		}
	}
	char *value = malloc(total + 1);
	if (!value)
		return out_of_memory(p);
	size_t len = 0;
	for (const xmlNode *c = n->children; c; c = c->next) {
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
			size_t l = strlen((const char *)c->content);
			memcpy(value + len, c->content, l);
			len += l;
		}
	}
	size_t start = 0;
	while (start < len && is_xml_space(value[start]))
		start++;
	while (len > start && is_xml_space(value[len - 1]))
		len--;
	memmove(value, value + start, len - start);
	value[len - start] = '\0';
	*out = value;
	return 0;
}

/* Decimal integer; false if `s` is not one. Sets *overflow when it is a
 * number too large for long long. */
static bool parse_integer(const char *s, long long *v, bool *overflow)
{
	*overflow = false;
	if (!*s || is_xml_space(*s))
		return false;
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return false;
	if (errno == ERANGE)
		*overflow = true;
	*v = x;
	return true;
}

static bool parse_boolean(const char *s, bool *v)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = false;
			return true;
		}
	}
	return false;
}

/* "A, B, C" from the non-alias names of a table. */
static void list_names(const struct enum_name *names, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (; names->name; names++) {
		if (names->alias)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names->name);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}

struct codec_name {
	const char *name;
	const char *canonical;
};

static const struct codec_name video_codecs[] = {
	{ "H264", "H264" }, { "H265", "H265" }, { "MP4", "MP4" }, { "JPEG", "JPEG" },
	/* other common spellings of the same codecs */
	{ "HEVC", "H265" }, { "MJPEG", "JPEG" }, { "MPEG4", "MP4" },
	{ NULL, NULL },
};

static const struct codec_name audio_codecs[] = {
	{ "G711A", "G711A" }, { "G711U", "G711U" }, { "G722", "G722" }, { "G726", "G726" },
	{ "AAC", "AAC" }, { "OPUS", "OPUS" },
	/* RTP's names for G.711, and Happytime's examples' bare "G711" (A-law,
	 * what most IP cameras send) */
	{ "PCMA", "G711A" }, { "PCMU", "G711U" }, { "G711", "G711A" },
	{ NULL, NULL },
};

static int store_codec(struct parse *p, const xmlNode *n, const struct codec_name *table,
		       const char *value, char *field, size_t size)
{
	for (const struct codec_name *c = table; c->name; c++) {
		if (strcasecmp(value, c->name) == 0) {
			/* canonical names are short constants, always < size */
			snprintf(field, size, "%s", c->canonical);
			return 0;
		}
	}
	char list[128];
	size_t used = 0;
	list[0] = '\0';
	for (const struct codec_name *c = table; c->name; c++) {
		if (strcmp(c->name, c->canonical) != 0)
			continue;
		int k = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", c->name);
		if (k > 0 && (size_t)k < sizeof list - used)
			used += (size_t)k;
	}
	return fail(p, n, "'%s' is not a supported codec (%s)", quote(value).s, list);
}

static bool has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void store_int(void *field, int v)
{
	memcpy(field, &v, sizeof v);
}

static int parse_leaf(struct parse *p, const struct node_spec *s, const xmlNode *n, void *field)
{
	char *value = NULL;
	int rc = leaf_value(p, n, &value);
	if (rc)
		return rc;
	if (value[0] == '\0')   /* an empty node keeps the default */
		goto out;

	switch (s->kind) {
	case V_INT: {
		long long v;
		bool overflow;
		if (!parse_integer(value, &v, &overflow)) {
			rc = fail(p, n, "'%s' is not a whole number", quote(value).s);
			break;
		}
		if (overflow || v < s->min || v > s->max) {
			rc = fail(p, n, "%s is out of range %lld..%lld", quote(value).s, s->min, s->max);
			break;
		}
		if (s->check_int && (rc = s->check_int(p, n, v)))
			break;
		store_int(field, (int)v);
		break;
	}
	case V_BOOL: {
		bool v;
		if (!parse_boolean(value, &v)) {
			rc = fail(p, n, "'%s' is not a boolean (use 0 or 1)", quote(value).s);
			break;
		}
		*(bool *)field = v;
		break;
	}
	case V_STR: {
		const char *v = value;
		if (has_control_char(v)) {
			rc = fail(p, n, "the value contains a control character");
			break;
		}
		if (s->check_str && (rc = s->check_str(p, n, &v)))
			break;
		size_t len = strlen(v);
		if (len >= s->size) {
			rc = fail(p, n, "the value is %zu bytes long; at most %zu fit", len, s->size - 1);
			break;
		}
		memcpy(field, v, len + 1);
		break;
	}
	case V_ENUM: {
		const struct enum_name *e = s->names;
		for (; e->name; e++)
			if (strcasecmp(value, e->name) == 0)
				break;
		if (!e->name) {
			char list[128];
			list_names(s->names, list, sizeof list);
			rc = fail(p, n, "'%s' is not one of %s", quote(value).s, list);
			break;
		}
		store_int(field, e->value);
		break;
	}
	case V_VCODEC:
		rc = store_codec(p, n, video_codecs, value, field, s->size);
		break;
	case V_ACODEC:
		rc = store_codec(p, n, audio_codecs, value, field, s->size);
		break;
	case V_GROUP:
	case V_LIST:
		rc = fail(p, n, "internal error: not a value node");
		break;
	}
out:
	free(value);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Walking an element's children                                       */

static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[NAME_MAX_PRINT + 1];
	if (la > NAME_MAX_PRINT || lb > NAME_MAX_PRINT)
		return INT_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diagonal = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			int best = diagonal + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = up;
		}
	}
	return row[lb];
}

static int unknown_node(struct parse *p, const xmlNode *n, const xmlNode *parent,
			const struct node_spec *specs, size_t nspecs)
{
	const char *best = NULL;
	int best_distance = 3;      /* suggest only close spellings */
	for (size_t i = 0; i < nspecs; i++) {
		int d = edit_distance(node_name(n), specs[i].name);
		if (d < best_distance) {
			best_distance = d;
			best = specs[i].name;
		}
	}
	char hint[96] = "";
	if (best)
		snprintf(hint, sizeof hint, "; did you mean <%s>?", best);
	bool top = parent->parent && parent->parent->type == XML_DOCUMENT_NODE;
	if (top)
		return fail(p, n, "unknown node%s", hint);
	return fail(p, n, "unknown node in <%.*s>%s", NAME_MAX_PRINT, node_name(parent), hint);
}

static int parse_element(struct parse *p, struct scope *sc, const struct node_spec *s,
			 xmlNode *n, void *base)
{
	if (s->kind != V_LIST && !(s->flags & F_NOT_RECORDED)) {
		int rc = record_seen(p, sc, s, n);
		if (rc)
			return rc;
	}
	void *field = (char *)base + s->offset;
	if (s->kind == V_GROUP || s->kind == V_LIST)
		return s->group(p, n, base, field, sc);
	return parse_leaf(p, s, n, field);
}

static const struct node_spec happytime_rtsps_port;

/* Stray text inside an element that holds other nodes. libxml2 gives a text
 * node the line where (the first chunk of) it ends, so count back the lines
 * that follow the first non-blank character to point at where it starts. */
static int unexpected_text(struct parse *p, const xmlNode *text, const xmlNode *parent)
{
	const char *content = (const char *)text->content;
	while (is_xml_space(*content))
		content++;
	long line = node_line(text);
	for (const char *c = content; *c && line > node_line(parent); c++)
		if (*c == '\n')
			line--;
	size_t len = strlen(content);
	while (len > 0 && is_xml_space(content[len - 1]))
		len--;
	char shown[QUOTE_MAX + 1];
	size_t n = len < QUOTE_MAX ? len : QUOTE_MAX;
	memcpy(shown, content, n);
	shown[n] = '\0';
	return fail_at(p, line, node_name(parent),
		       "unexpected text '%s%s' (this node holds other nodes, not a value)",
		       quote(shown).s, len > QUOTE_MAX ? "..." : "");
}

static int parse_children(struct parse *p, xmlNode *parent, const struct node_spec *specs,
			  size_t nspecs, void *base, struct scope *sc)
{
	for (xmlNode *c = parent->children; c; c = c->next) {
		switch (c->type) {
		case XML_ELEMENT_NODE:
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (is_blank(c->content))
				continue;
			return unexpected_text(p, c, parent);
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			continue;
		case XML_ENTITY_REF_NODE:
			return fail_at(p, node_line(c), node_name(parent),
				       "entity references (&%.*s;) are not supported",
				       NAME_MAX_PRINT, node_name(c));
		default:
			return fail(p, parent, "unexpected content");
		}

		const struct node_spec *s = NULL;
		for (size_t i = 0; i < nspecs; i++) {
			if (strcmp(node_name(c), specs[i].name) == 0) {
				s = &specs[i];
				break;
			}
		}
		if (!s)
			return unknown_node(p, c, parent, specs, nspecs);
		if (c->properties)
			return fail(p, c, "attributes are not used; put the value between the tags");

		if ((s->flags & F_HAPPYTIME_RTSP_PORT) &&
		    SEEN(sc, struct rtspd_config, rtsps_enable) &&
		    SEEN(sc, struct rtspd_config, rtsp_port))
			s = &happytime_rtsps_port;

		int rc = parse_element(p, sc, s, c, base);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checks on single values                                             */

static int check_loop_nums(struct parse *p, const xmlNode *n, long long v)
{
	if (v == 0)
		return fail(p, n, "0 is not allowed: use -1 to loop forever or a count of 1 or more");
	return 0;
}

static int check_samplerate(struct parse *p, const xmlNode *n, long long v)
{
	if (v != 0 && v < 8000)
		return fail(p, n, "%lld is out of range: 0 (as the source) or 8000..48000", v);
	return 0;
}

/* A stream name: the path of rtsp://host/SUFFIX. A leading '/' is
 * tolerated and dropped. */
static int check_suffix(struct parse *p, const xmlNode *n, const char **value)
{
	const char *v = *value;
	while (*v == '/')
		v++;
	if (!*v)
		return fail(p, n, "'%s' does not name a stream", quote(*value).s);
	if (strpbrk(v, " \t?#"))
		return fail(p, n, "'%s' cannot be a URL path (no spaces, '?' or '#')", quote(v).s);
	*value = v;
	return 0;
}

static bool has_scheme(const char *url, const char *const *schemes, size_t nschemes)
{
	for (size_t i = 0; i < nschemes; i++) {
		size_t l = strlen(schemes[i]);
		if (strncasecmp(url, schemes[i], l) == 0 && url[l] != '\0')
			return true;
	}
	return false;
}

static int check_upstream_url(struct parse *p, const xmlNode *n, const char **value)
{
	static const char *const schemes[] = {
		"rtsp://", "rtsps://", "rtmp://", "srt://", "http://", "https://",
	};
	if (!has_scheme(*value, schemes, ARRAY_SIZE(schemes)))
		return fail(p, n, "'%s' is not a supported upstream URL "
			    "(rtsp://, rtsps://, rtmp://, srt://, http://, https://)", quote(*value).s);
	if (strpbrk(*value, " \t"))
		return fail(p, n, "a URL cannot contain spaces (write them as %%20)");
	return 0;
}

static int check_notify_url(struct parse *p, const xmlNode *n, const char **value)
{
	static const char *const schemes[] = { "http://", "https://" };
	if (!has_scheme(*value, schemes, ARRAY_SIZE(schemes)))
		return fail(p, n, "'%s' is not an http:// or https:// URL", quote(*value).s);
	if (strpbrk(*value, " \t"))
		return fail(p, n, "a URL cannot contain spaces (write them as %%20)");
	return 0;
}

static int check_socket_path(struct parse *p, const xmlNode *n, const char **value)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	size_t len = strlen(*value);
	if (len > max)
		return fail(p, n, "the path is %zu bytes long; a Unix socket path can be at most %zu",
			    len, max);
	return 0;
}

/* Groups are handed out from 232.0.0.0/8, the source-specific multicast
 * range (RFC 4607), which SPEC section 4 asks for: anything else is refused
 * rather than silently moved. */
static int check_mcast_group(struct parse *p, const xmlNode *n, const char **value)
{
	struct in_addr a;
	if (inet_pton(AF_INET, *value, &a) != 1)
		return fail(p, n, "'%s' is not an IPv4 address", *value);
	if ((ntohl(a.s_addr) >> 24) != 232)
		return fail(p, n, "'%s' is not in 232.0.0.0/8 (the SSM range multicast groups come from)", *value);
	return 0;
}

/* G.726 is mono and has four rates (RFC 3551); anything else cannot be
 * sent, so say so now rather than when a client asks for it. `audio_at`
 * is where the struct cfg_audio sits in the scope's struct. */
static int check_audio(struct parse *p, const xmlNode *n, const struct scope *sc,
		       const struct cfg_audio *a, size_t audio_at)
{
	if (strcmp(a->codec, "G726") != 0)
		return 0;
	if (a->channels > 1)
		return fail_seen(p, find_seen(sc, audio_at + offsetof(struct cfg_audio, channels), sizeof(int)),
				 n, "G726 is mono only");
	if (a->bitrate != 0 && a->bitrate != 16 && a->bitrate != 24 && a->bitrate != 32 && a->bitrate != 40)
		return fail_seen(p, find_seen(sc, audio_at + offsetof(struct cfg_audio, bitrate), sizeof(int)),
				 n, "G726 runs at 16, 24, 32 or 40 kbit/s, not %d", a->bitrate);
	return 0;
}

/* ------------------------------------------------------------------ */
/* <video> <audio> <output>                                            */

static const struct node_spec video_nodes[] = {
	{ N_VCODEC("codec", struct cfg_video, codec) },
	{ N_INT("width", struct cfg_video, width, 0, 8192) },
	{ N_INT("height", struct cfg_video, height, 0, 8192) },
	{ N_INT("framerate", struct cfg_video, framerate, 0, 120) },
	{ N_INT("bitrate", struct cfg_video, bitrate, 0, 1000000) },
};

static const struct node_spec audio_nodes[] = {
	{ N_ACODEC("codec", struct cfg_audio, codec) },
	{ N_INT("samplerate", struct cfg_audio, samplerate, 0, 48000), .check_int = check_samplerate },
	{ N_INT("channels", struct cfg_audio, channels, 0, 2) },
	{ N_INT("bitrate", struct cfg_audio, bitrate, 0, 100000) },
};

static int parse_video(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct scope inner = { .nseen = 0 };
	return parse_children(p, n, video_nodes, ARRAY_SIZE(video_nodes), field, &inner);
}

static int parse_audio(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct scope inner = { .nseen = 0 };
	int rc = parse_children(p, n, audio_nodes, ARRAY_SIZE(audio_nodes), field, &inner);
	if (rc)
		return rc;
	return check_audio(p, n, &inner, field, 0);
}

static const struct node_spec output_nodes[] = {
	{ N_STR("url", struct cfg_output, url) },
	{ N_GROUP("video", struct cfg_output, video, parse_video) },
	{ N_GROUP("audio", struct cfg_output, audio, parse_audio) },
};

/* Inside <proxy> and <pusher>, the URL is the proxy's or pusher's own. */
static const struct node_spec nested_output_nodes[] = {
	{ N_GROUP("video", struct cfg_output, video, parse_video) },
	{ N_GROUP("audio", struct cfg_output, audio, parse_audio) },
};

static int parse_output_body(struct parse *p, xmlNode *n, struct cfg_output *o, bool with_url)
{
	struct scope inner = { .nseen = 0 };
	o->line = (int)node_line(n);
	if (with_url)
		return parse_children(p, n, output_nodes, ARRAY_SIZE(output_nodes), o, &inner);
	return parse_children(p, n, nested_output_nodes, ARRAY_SIZE(nested_output_nodes), o, &inner);
}

/* Make room for one more element in a heap array whose capacity follows
 * from its count (4, then doubling at each power of two). Returns the array,
 * possibly moved, or NULL with *rc set. */
static void *list_grow(struct parse *p, const xmlNode *n, void *array, int count,
		       size_t elem_size, int max, int *rc)
{
	if (count >= max) {
		*rc = fail(p, n, "too many <%.*s> nodes (at most %d)", NAME_MAX_PRINT, node_name(n), max);
		return NULL;
	}
	if (count == 0 || (count >= 4 && (count & (count - 1)) == 0)) {
		size_t slots = count == 0 ? 4 : (size_t)count * 2;
		void *grown = realloc(array, slots * elem_size);
		if (!grown) {
			*rc = out_of_memory(p);
			return NULL;
		}
		return grown;
	}
	return array;
}

/* Append a zeroed element to one of the config's lists. */
#define LIST_APPEND(p, n, cfg, list, count, max, elem, rc)                                   \
	do {                                                                                 \
		__typeof__((cfg)->list) grown_ = list_grow((p), (n), (cfg)->list, (cfg)->count, \
							   sizeof *(cfg)->list, (max), &(rc)); \
		if (!grown_)                                                                 \
			return (rc);                                                         \
		(cfg)->list = grown_;                                                        \
		(elem) = &grown_[(cfg)->count++];                                            \
		memset((elem), 0, sizeof *(elem));                                          \
	} while (0)

static int parse_output(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct rtspd_config *cfg = base;
	struct cfg_output *o;
	int rc = 0;
	LIST_APPEND(p, n, cfg, outputs, noutputs, MAX_OUTPUTS, o, rc);
	return parse_output_body(p, n, o, true);
}

/* ------------------------------------------------------------------ */
/* <user>                                                              */

static const struct node_spec user_nodes[] = {
	{ N_STR("username", struct cfg_user, username) },
	{ N_STR("password", struct cfg_user, password) },
};

static int parse_user(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct rtspd_config *cfg = base;
	struct cfg_user *u;
	int rc = 0;
	LIST_APPEND(p, n, cfg, users, nusers, MAX_USERS, u, rc);
	struct scope inner = { .nseen = 0 };
	rc = parse_children(p, n, user_nodes, ARRAY_SIZE(user_nodes), u, &inner);
	if (rc)
		return rc;
	if (!u->username[0])
		return fail(p, n, "<username> is required");
	for (int i = 0; i < cfg->nusers - 1; i++)
		if (strcmp(cfg->users[i].username, u->username) == 0)
			return fail_seen(p, SEEN(&inner, struct cfg_user, username), n,
					 "user '%s' is defined twice", quote(u->username).s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* <proxy> <pusher>                                                    */

/* A stream name must be unique across proxies and pushers; `self` is the
 * element just appended, the last of its array. */
static int check_suffix_unique(struct parse *p, const xmlNode *n, const struct scope *sc,
			       const char *suffix, size_t suffix_at, const void *self)
{
	const struct rtspd_config *cfg = p->cfg;
	const struct seen_node *where = find_seen(sc, suffix_at, CFG_STR);
	for (int i = 0; i < cfg->nproxies; i++)
		if (&cfg->proxies[i] != self && strcmp(cfg->proxies[i].suffix, suffix) == 0)
			return fail_seen(p, where, n, "'%s' is already the suffix of the <proxy> at line %d",
					 quote(suffix).s, cfg->proxies[i].line);
	for (int i = 0; i < cfg->npushers; i++)
		if (&cfg->pushers[i] != self && strcmp(cfg->pushers[i].suffix, suffix) == 0)
			return fail_seen(p, where, n, "'%s' is already the suffix of the <pusher> at line %d",
					 quote(suffix).s, cfg->pushers[i].line);
	return 0;
}

static const struct enum_name proxy_transfers[] = {
	{ "TCP", TRANSFER_TCP, false },
	{ "UDP", TRANSFER_UDP, false },
	{ "MULTICAST", TRANSFER_MULTICAST, false },
	{ NULL, 0, false },
};

static int parse_proxy_output(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct cfg_proxy *px = base;
	px->has_output = true;
	return parse_output_body(p, n, field, false);
}

static const struct node_spec proxy_nodes[] = {
	{ N_STR("suffix", struct cfg_proxy, suffix), .check_str = check_suffix },
	{ N_STR("url", struct cfg_proxy, url), .check_str = check_upstream_url },
	{ N_STR("user", struct cfg_proxy, user) },
	{ N_STR("pass", struct cfg_proxy, pass) },
	{ N_ENUM("transfer", struct cfg_proxy, transfer, proxy_transfers) },
	{ N_BOOL("ondemand", struct cfg_proxy, ondemand) },
	{ N_GROUP("output", struct cfg_proxy, output, parse_proxy_output) },
};

static int parse_proxy(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct rtspd_config *cfg = base;
	struct cfg_proxy *px;
	int rc = 0;
	LIST_APPEND(p, n, cfg, proxies, nproxies, MAX_PROXIES, px, rc);
	px->line = (int)node_line(n);
	px->transfer = TRANSFER_TCP;
	px->ondemand = false;
	struct scope inner = { .nseen = 0 };
	rc = parse_children(p, n, proxy_nodes, ARRAY_SIZE(proxy_nodes), px, &inner);
	if (rc)
		return rc;
	if (!px->suffix[0])
		return fail(p, n, "<suffix> is required");
	if (!px->url[0])
		return fail(p, n, "<url> is required");
	return check_suffix_unique(p, n, &inner, px->suffix, offsetof(struct cfg_proxy, suffix), px);
}

static const struct enum_name pusher_modes[] = {
	{ "TCP", TRANSFER_TCP, false },
	{ "UDP", TRANSFER_UDP, false },
	/* Happytime's examples write <mode>rtsp</mode>: an ANNOUNCE/RECORD
	 * publisher, which needs no ports */
	{ "RTSP", TRANSFER_RTSP, false },
	{ NULL, 0, false },
};

/* <transfer><mode>..</mode><ip>..</ip><vport>..</vport><aport>..</aport></transfer>,
 * filling the pusher itself: the flat form (<transfer>TCP</transfer> with
 * sibling <vport>/<aport>) fills the same fields, so giving both is caught
 * as a duplicate. */
static const struct node_spec pusher_transfer_nodes[] = {
	{ N_ENUM("mode", struct cfg_pusher, transfer, pusher_modes) },
	{ N_STR("ip", struct cfg_pusher, ip) },
	/* 0: no port, no stream of that kind */
	{ N_INT("vport", struct cfg_pusher, vport, 0, PORT_MAX) },
	{ N_INT("aport", struct cfg_pusher, aport, 0, PORT_MAX) },
};

static const struct node_spec pusher_transfer_flat = {
	N_ENUM("transfer", struct cfg_pusher, transfer, pusher_modes)
};

static int parse_pusher_transfer(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	bool nested = false;
	for (const xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			nested = true;
	if (!nested)
		return parse_element(p, sc, &pusher_transfer_flat, n, base);
	return parse_children(p, n, pusher_transfer_nodes, ARRAY_SIZE(pusher_transfer_nodes), base, sc);
}

static int parse_pusher_output(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct cfg_pusher *pu = base;
	pu->has_output = true;
	return parse_output_body(p, n, field, false);
}

static const struct node_spec pusher_nodes[] = {
	{ N_STR("suffix", struct cfg_pusher, suffix), .check_str = check_suffix },
	{ N_GROUP("video", struct cfg_pusher, video, parse_video) },
	{ N_GROUP("audio", struct cfg_pusher, audio, parse_audio) },
	{ N_GROUP("transfer", struct cfg_pusher, transfer, parse_pusher_transfer), .flags = F_NOT_RECORDED },
	{ N_STR("ip", struct cfg_pusher, ip) },
	{ N_INT("vport", struct cfg_pusher, vport, 0, PORT_MAX) },
	{ N_INT("aport", struct cfg_pusher, aport, 0, PORT_MAX) },
	{ N_BOOL("srtp", struct cfg_pusher, srtp) },
	{ N_GROUP("output", struct cfg_pusher, output, parse_pusher_output) },
};

static int check_pusher(struct parse *p, const xmlNode *n, const struct scope *sc,
			const struct cfg_pusher *pu)
{
	const struct seen_node *vport = SEEN(sc, struct cfg_pusher, vport);
	const struct seen_node *aport = SEEN(sc, struct cfg_pusher, aport);

	if (!pu->suffix[0])
		return fail(p, n, "<suffix> is required");
	int rc = check_suffix_unique(p, n, sc, pu->suffix, offsetof(struct cfg_pusher, suffix), pu);
	if (rc)
		return rc;
	if (pu->transfer == TRANSFER_RTSP)
		return 0;   /* published with ANNOUNCE/RECORD: the ports are not used */

	const char *mode = pu->transfer == TRANSFER_UDP ? "UDP" : "TCP";
	if (pu->vport == 0 && pu->aport == 0)
		return fail(p, n, "%s mode needs a <vport> and/or an <aport>", mode);
	if (pu->vport && !pu->video.codec[0])
		return fail_seen(p, vport, n, "port %d receives video, so <video> needs a <codec>", pu->vport);
	if (pu->aport && !pu->audio.codec[0])
		return fail_seen(p, aport, n, "port %d receives audio, so <audio> needs a <codec>", pu->aport);
	if (pu->vport && pu->vport == pu->aport)
		return fail_seen(p, aport, n, "port %d is also the <vport>", pu->aport);

	const struct rtspd_config *cfg = p->cfg;
	for (int i = 0; i < cfg->npushers; i++) {
		const struct cfg_pusher *other = &cfg->pushers[i];
		if (other == pu || other->transfer != pu->transfer)
			continue;
		int ports[2] = { pu->vport, pu->aport };
		const struct seen_node *where[2] = { vport, aport };
		for (int k = 0; k < 2; k++)
			if (ports[k] && (ports[k] == other->vport || ports[k] == other->aport))
				return fail_seen(p, where[k], n, "%s port %d is already used by the <pusher> at line %d",
						 mode, ports[k], other->line);
	}
	return 0;
}

static int parse_pusher(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct rtspd_config *cfg = base;
	struct cfg_pusher *pu;
	int rc = 0;
	LIST_APPEND(p, n, cfg, pushers, npushers, MAX_PUSHERS, pu, rc);
	pu->line = (int)node_line(n);
	pu->transfer = TRANSFER_TCP;
	struct scope inner = { .nseen = 0 };
	rc = parse_children(p, n, pusher_nodes, ARRAY_SIZE(pusher_nodes), pu, &inner);
	if (rc)
		return rc;
	return check_pusher(p, n, &inner, pu);
}

/* ------------------------------------------------------------------ */
/* <http_notify> <backchannel>                                         */

static const struct enum_name notify_methods[] = {
	{ "POST", NOTIFY_POST, false },
	{ "GET", NOTIFY_GET, false },
	{ NULL, 0, false },
};

static const struct node_spec http_notify_nodes[] = {
	{ N_BOOL("enable", struct cfg_http_notify, enable) },
	{ N_STR("url", struct cfg_http_notify, url), .check_str = check_notify_url },
	{ N_STR("notify_url", struct cfg_http_notify, url), .check_str = check_notify_url },
	{ N_ENUM("method", struct cfg_http_notify, method, notify_methods) },
	{ N_ENUM("notify_method", struct cfg_http_notify, method, notify_methods) },
	{ N_BOOL("on_connect", struct cfg_http_notify, on_connect) },
	{ N_BOOL("on_play", struct cfg_http_notify, on_play) },
	{ N_BOOL("on_publish", struct cfg_http_notify, on_publish) },
	{ N_BOOL("on_done", struct cfg_http_notify, on_done) },
	{ N_INT("timeout_ms", struct cfg_http_notify, timeout_ms, 1, 600000) },
};

static int parse_http_notify(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct cfg_http_notify *hn = field;
	struct scope inner = { .nseen = 0 };
	int rc = parse_children(p, n, http_notify_nodes, ARRAY_SIZE(http_notify_nodes), hn, &inner);
	if (rc)
		return rc;
	if (hn->enable && !hn->url[0])
		return fail_seen(p, SEEN(&inner, struct cfg_http_notify, enable), n,
				 "is 1, so <http_notify> needs a <url>");
	return 0;
}

static const struct node_spec backchannel_nodes[] = {
	{ N_BOOL("enable", struct cfg_backchannel, enable) },
	{ N_ACODEC("codec", struct cfg_backchannel, audio.codec) },
	{ N_INT("samplerate", struct cfg_backchannel, audio.samplerate, 0, 48000), .check_int = check_samplerate },
	{ N_INT("channels", struct cfg_backchannel, audio.channels, 0, 2) },
	{ N_INT("bitrate", struct cfg_backchannel, audio.bitrate, 0, 100000) },
	{ N_GROUP("audio", struct cfg_backchannel, audio, parse_audio) },
	{ N_STR("device", struct cfg_backchannel, device) },
	{ N_STR("wav_dir", struct cfg_backchannel, wav_dir) },
};

static int parse_backchannel(struct parse *p, xmlNode *n, void *base, void *field, struct scope *sc)
{
	struct cfg_backchannel *bc = field;
	bc->enable = true;      /* the node's presence turns it on, unless <enable>0 */
	struct scope inner = { .nseen = 0 };
	int rc = parse_children(p, n, backchannel_nodes, ARRAY_SIZE(backchannel_nodes), bc, &inner);
	if (rc)
		return rc;
	const struct seen_node *audio = SEEN(&inner, struct cfg_backchannel, audio);
	bool flat = SEEN(&inner, struct cfg_backchannel, audio.codec) ||
		    SEEN(&inner, struct cfg_backchannel, audio.samplerate) ||
		    SEEN(&inner, struct cfg_backchannel, audio.channels) ||
		    SEEN(&inner, struct cfg_backchannel, audio.bitrate);
	if (audio && flat)
		return fail_seen(p, audio, n, "give the audio format either in <audio> or directly "
				 "in <backchannel>, not both");
	if (flat)
		return check_audio(p, n, &inner, &bc->audio, offsetof(struct cfg_backchannel, audio));
	return 0;
}

/* ------------------------------------------------------------------ */
/* <config>                                                            */

static const struct enum_name file_modes[] = {
	{ "ondemand", FILE_MODE_ONDEMAND, false },
	{ "live", FILE_MODE_LIVE, false },
	{ "on-demand", FILE_MODE_ONDEMAND, true },
	{ "on_demand", FILE_MODE_ONDEMAND, true },
	{ NULL, 0, false },
};

static const struct node_spec config_nodes[] = {
	{ N_STR("serverip", struct rtspd_config, serverip) },
	{ N_INT("rtsp_port", struct rtspd_config, rtsp_port, PORT_MIN, PORT_MAX),
	  .flags = F_HAPPYTIME_RTSP_PORT },
	{ N_INT("serverport", struct rtspd_config, rtsp_port, PORT_MIN, PORT_MAX) },

	/* RTSPS: Happytime's spelling, then the clear one */
	{ N_BOOL("rtsp_enable", struct rtspd_config, rtsps_enable) },
	{ N_STR("rtsp_cert", struct rtspd_config, rtsps_cert) },
	{ N_STR("rtsp_key", struct rtspd_config, rtsps_key) },
	{ N_BOOL("rtsps_enable", struct rtspd_config, rtsps_enable) },
	{ N_INT("rtsps_port", struct rtspd_config, rtsps_port, PORT_MIN, PORT_MAX) },
	{ N_STR("rtsps_cert", struct rtspd_config, rtsps_cert) },
	{ N_STR("rtsps_key", struct rtspd_config, rtsps_key) },

	{ N_INT("loop_nums", struct rtspd_config, loop_nums, -1, INT_MAX), .check_int = check_loop_nums },
	{ N_BOOL("multicast", struct rtspd_config, multicast) },
	/* each session takes 8 ports from the base */
	{ N_INT("udp_base_port", struct rtspd_config, udp_base_port, 1024, PORT_MAX - 8) },
	{ N_BOOL("metadata", struct rtspd_config, metadata) },
	{ N_BOOL("rtsp_over_http", struct rtspd_config, rtsp_over_http) },
	{ N_INT("http_port", struct rtspd_config, http_port, PORT_MIN, PORT_MAX) },
	{ N_BOOL("rtsp_over_https", struct rtspd_config, rtsp_over_https) },
	{ N_INT("https_port", struct rtspd_config, https_port, PORT_MIN, PORT_MAX) },
	{ N_STR("https_cert", struct rtspd_config, https_cert) },
	{ N_STR("https_key", struct rtspd_config, https_key) },
	{ N_BOOL("ipv6_enable", struct rtspd_config, ipv6_enable) },
	{ N_BOOL("need_auth", struct rtspd_config, need_auth) },
	{ N_BOOL("log_enable", struct rtspd_config, log_enable) },
	{ N_INT("log_level", struct rtspd_config, log_level, 0, 5) },

	{ N_GROUP("http_notify", struct rtspd_config, http_notify, parse_http_notify) },
	{ N_LIST("user", parse_user) },
	{ N_LIST("output", parse_output) },
	{ N_LIST("proxy", parse_proxy) },
	{ N_LIST("pusher", parse_pusher) },
	{ N_GROUP("backchannel", struct rtspd_config, backchannel, parse_backchannel) },

	/* our extensions */
	{ N_STR("media_dir", struct rtspd_config, media_dir) },
	{ N_ENUM("file_mode", struct rtspd_config, file_mode, file_modes) },
	{ N_STR("control_socket", struct rtspd_config, control_socket), .check_str = check_socket_path },
	{ N_INT("session_timeout", struct rtspd_config, session_timeout, 5, 3600) },
	{ N_INT("worker_idle_timeout", struct rtspd_config, worker_idle_timeout, 0, 3600) },
	{ N_INT("max_sessions", struct rtspd_config, max_sessions, 1, 100000) },
	{ N_INT("slow_viewer_timeout", struct rtspd_config, slow_viewer_timeout, 1, 600) },
	{ N_INT("ring_size_kb", struct rtspd_config, ring_size_kb, 256, 1048576) },
	{ N_STR("multicast_group_base", struct rtspd_config, multicast_group_base), .check_str = check_mcast_group },
	/* each stream takes CFG_MCAST_PORTS ports from the base */
	{ N_INT("multicast_port_base", struct rtspd_config, multicast_port_base, 1024, PORT_MAX - CFG_MCAST_PORTS) },
	{ N_INT("multicast_ttl", struct rtspd_config, multicast_ttl, 1, 255) },
	{ N_BOOL("srtp_over_plain_rtsp", struct rtspd_config, srtp_over_plain_rtsp) },
};

static const struct node_spec happytime_rtsps_port = {
	N_INT("rtsps_port", struct rtspd_config, rtsps_port, PORT_MIN, PORT_MAX)
};

/* Every node of one element records at most one entry in its scope. */
_Static_assert(ARRAY_SIZE(config_nodes) <= SCOPE_MAX_SEEN, "scope too small for <config>");
_Static_assert(ARRAY_SIZE(pusher_nodes) + ARRAY_SIZE(pusher_transfer_nodes) <= SCOPE_MAX_SEEN,
	       "scope too small for <pusher>");

/* Two listeners on one port cannot both be opened. */
static int check_listener_ports(struct parse *p, const xmlNode *root, const struct scope *sc)
{
	const struct rtspd_config *c = p->cfg;
	struct listener {
		const char *what;
		bool enabled;
		int port;
		const struct seen_node *set_by;
	} l[] = {
		{ "RTSP", true, c->rtsp_port, SEEN(sc, struct rtspd_config, rtsp_port) },
		{ "RTSPS", c->rtsps_enable, c->rtsps_port, SEEN(sc, struct rtspd_config, rtsps_port) },
		{ "RTSP over HTTP", c->rtsp_over_http, c->http_port, SEEN(sc, struct rtspd_config, http_port) },
		{ "RTSP over HTTPS", c->rtsp_over_https, c->https_port, SEEN(sc, struct rtspd_config, https_port) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(l); i++) {
		for (size_t j = i + 1; j < ARRAY_SIZE(l); j++) {
			if (!l[i].enabled || !l[j].enabled || l[i].port != l[j].port)
				continue;
			/* blame whichever was written later in the file */
			const struct listener *a = &l[i], *b = &l[j];
			if (!b->set_by || (a->set_by && a->set_by->line > b->set_by->line)) {
				const struct listener *t = a;
				a = b;
				b = t;
			}
			return fail_seen(p, b->set_by, root, "port %d is already the %s port",
					 b->port, a->what);
		}
	}
	return 0;
}

static int parse_config(struct parse *p, xmlNode *root)
{
	struct scope top = { .nseen = 0 };
	int rc = parse_children(p, root, config_nodes, ARRAY_SIZE(config_nodes), p->cfg, &top);
	if (rc)
		return rc;
	if (p->cfg->need_auth && p->cfg->nusers == 0)
		return fail_seen(p, SEEN(&top, struct rtspd_config, need_auth), root,
				 "is 1, but no <user> is defined: nobody could log in");
	return check_listener_ports(p, root, &top);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */

void config_defaults(struct rtspd_config *c)
{
	memset(c, 0, sizeof *c);
	c->rtsp_port = 554;
	c->rtsps_port = 322;
	c->loop_nums = -1;
	c->udp_base_port = 22000;
	c->http_port = 80;
	c->https_port = 443;
	c->log_enable = true;
	c->log_level = 2;

	c->http_notify.method = NOTIFY_POST;
	c->http_notify.timeout_ms = 3000;
	snprintf(c->backchannel.device, sizeof c->backchannel.device, "default");

	snprintf(c->media_dir, sizeof c->media_dir, ".");
	c->file_mode = FILE_MODE_ONDEMAND;
	snprintf(c->control_socket, sizeof c->control_socket, "/run/rtspd/control.sock");
	c->session_timeout = 60;
	c->worker_idle_timeout = 10;
	c->max_sessions = 10000;
	c->slow_viewer_timeout = 10;
	c->ring_size_kb = 8192;
	snprintf(c->multicast_group_base, sizeof c->multicast_group_base, "232.0.1.0");
	c->multicast_port_base = 26000;
	c->multicast_ttl = 16;
}

int config_multicast_address(const struct rtspd_config *c, unsigned index, char *group, size_t len, int *port)
{
	struct in_addr a;
	if (inet_pton(AF_INET, c->multicast_group_base, &a) != 1 || (ntohl(a.s_addr) >> 24) != 232)
		return -EINVAL;
	/* Wrap inside 232.0.0.0/8 and inside the port range: two streams
	 * share a port only 2^24 streams apart in group, so they never share
	 * a group and port pair before 2^24 streams. */
	uint32_t host = (ntohl(a.s_addr) & 0xffffffu) + index;
	a.s_addr = htonl(0xe8000000u | (host & 0xffffffu));
	if (!inet_ntop(AF_INET, &a, group, (socklen_t)len))
		return -ENOSPC;
	unsigned nslots = (unsigned)(PORT_MAX + 1 - c->multicast_port_base) / CFG_MCAST_PORTS;
	if (nslots == 0)
		return -EINVAL;
	*port = c->multicast_port_base + (int)(index % nslots) * CFG_MCAST_PORTS;
	return 0;
}

void config_free(struct rtspd_config *c)
{
	if (!c)
		return;
	free(c->users);
	free(c->outputs);
	free(c->proxies);
	free(c->pushers);
	c->users = NULL;
	c->outputs = NULL;
	c->proxies = NULL;
	c->pushers = NULL;
	c->nusers = c->noutputs = c->nproxies = c->npushers = 0;
}

static int parse_document(struct parse *p, const char *buf, size_t len)
{
	if (len == 0)
		return fail_at(p, 1, NULL, "XML syntax error: the file is empty");

	xmlInitParser();

	/* Swap in our handlers for this thread only, and put back whatever
	 * another part of the program had installed. */
	struct xml_error_capture cap = { .seen = false };
	xmlStructuredErrorFunc saved_structured = xmlStructuredError;
	void *saved_structured_ctx = xmlStructuredErrorContext;
	xmlGenericErrorFunc saved_generic = xmlGenericError;
	void *saved_generic_ctx = xmlGenericErrorContext;
	xmlSetStructuredErrorFunc(&cap, capture_xml_error);
	xmlSetGenericErrorFunc(&cap, ignore_generic_error);

	/* No NOENT: entities are not substituted; no DTDLOAD: nothing external
	 * is read; NONET: nothing from the network either. */
	xmlDocPtr doc = xmlReadMemory(buf, (int)len, NULL, NULL,
				      XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_BIG_LINES);

	xmlSetStructuredErrorFunc(saved_structured_ctx, saved_structured);
	xmlSetGenericErrorFunc(saved_generic_ctx, saved_generic);

	int rc;
	if (!doc || cap.seen) {
		rc = fail_at(p, cap.seen ? cap.line : 1, NULL, "XML syntax error: %s",
			     cap.seen ? cap.message : "the file is not well-formed XML");
		goto out;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root) {
		rc = fail_at(p, 1, NULL, "XML syntax error: no root element");
		goto out;
	}
	if (strcmp(node_name(root), "config") != 0) {
		rc = fail(p, root, "the root element must be <config>");
		goto out;
	}
	rc = parse_config(p, root);
out:
	xmlFreeDoc(doc);
	return rc;
}

int config_load_buffer(const char *buf, size_t len, const char *name,
		       struct rtspd_config *out, char *err, size_t errlen)
{
	struct parse p = {
		.label = name ? name : "(config)", .err = err, .errlen = errlen, .cfg = out,
	};
	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return fail_file(&p, -EINVAL, "no configuration to fill");

	config_defaults(out);
	int rc;
	if (!buf && len) {
		rc = fail_file(&p, -EINVAL, "no data");
	} else if (len > CONFIG_MAX_BYTES) {
		rc = fail_file(&p, -EFBIG, "the file is %zu bytes; at most %d are accepted",
			       len, CONFIG_MAX_BYTES);
	} else if (name && strlen(name) >= sizeof out->source_path) {
		rc = fail_file(&p, -ENAMETOOLONG, "the file name is too long");
	} else {
		if (name)
			memcpy(out->source_path, name, strlen(name) + 1);
		rc = parse_document(&p, buf, len);
	}
	if (rc) {
		config_free(out);
		memset(out, 0, sizeof *out);
	}
	return rc;
}

/* Read a whole file, refusing anything larger than CONFIG_MAX_BYTES. */
static int read_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	/* st_size is only a hint (pipes, /proc): read until end of file */
	size_t cap = st.st_size > 0 && st.st_size <= CONFIG_MAX_BYTES ? (size_t)st.st_size + 1 : 65536;
	char *buf = malloc(cap);
	size_t used = 0;
	int rc = buf ? 0 : -ENOMEM;
	while (rc == 0) {
		if (used == cap) {
			if (cap > CONFIG_MAX_BYTES) {
				rc = -EFBIG;
				break;
			}
			char *grown = realloc(buf, cap * 2);
			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			buf = grown;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			break;
		else
			used += (size_t)n;
	}
	close(fd);
	if (rc == 0 && used > CONFIG_MAX_BYTES)
		rc = -EFBIG;
	if (rc) {
		free(buf);
		return rc;
	}
	*data = buf;
	*len = used;
	return 0;
}

int config_load(const char *path, struct rtspd_config *out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!path || !out) {
		if (err && errlen)
			snprintf(err, errlen, "no configuration file given");
		if (out)
			memset(out, 0, sizeof *out);
		return -EINVAL;
	}
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(path, &data, &len);
	if (rc) {
		if (err && errlen) {
			if (rc == -EFBIG)
				snprintf(err, errlen, "%s: the file is larger than %d bytes", path, CONFIG_MAX_BYTES);
			else
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		}
		memset(out, 0, sizeof *out);
		return rc;
	}
	rc = config_load_buffer(data, len, path, out, err, errlen);
	free(data);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Features this build does not implement yet                          */

static bool wants_metadata(const struct rtspd_config *c) { return c->metadata; }
static bool wants_auth(const struct rtspd_config *c) { return c->need_auth; }
static bool wants_notify(const struct rtspd_config *c) { return c->http_notify.enable; }
/* users only take effect with need_auth; without it they are inert */
static bool wants_users(const struct rtspd_config *c) { return c->need_auth && c->nusers > 0; }
static bool wants_proxies(const struct rtspd_config *c) { return c->nproxies > 0; }
static bool wants_pushers(const struct rtspd_config *c) { return c->npushers > 0; }

/* An <output> whose every value is 0 or empty means "as the source" for
 * everything, which needs no transcoding. */
static bool wants_outputs(const struct rtspd_config *c)
{
	for (int i = 0; i < c->noutputs; i++) {
		const struct cfg_video *v = &c->outputs[i].video;
		const struct cfg_audio *a = &c->outputs[i].audio;
		if (v->codec[0] || v->width || v->height || v->framerate || v->bitrate ||
		    a->codec[0] || a->samplerate || a->channels || a->bitrate)
			return true;
	}
	return false;
}

/* The one list of what is not there yet: remove an entry when its feature
 * lands. */
static const struct {
	const char *feature;
	bool (*configured)(const struct rtspd_config *c);
} not_yet_supported[] = {
	{ "metadata", wants_metadata },
	{ "need_auth", wants_auth },
	{ "http_notify.enable", wants_notify },
	{ "users", wants_users },
	{ "outputs", wants_outputs },
	{ "proxies", wants_proxies },
	{ "pushers", wants_pushers },
};

int config_unsupported(const struct rtspd_config *c,
		       void (*emit)(const char *feature, void *arg), void *arg)
{
	int count = 0;
	for (size_t i = 0; i < ARRAY_SIZE(not_yet_supported); i++) {
		if (!not_yet_supported[i].configured(c))
			continue;
		if (emit)
			emit(not_yet_supported[i].feature, arg);
		count++;
	}
	return count;
}
