/* rtsp-talk — sends an audio file or a live ALSA capture to the ONVIF audio
 * back channel of an RTSP server (a camera, or rtspd).
 *
 *   rtsp-talk [-u user:pass] [-t udp|tcp|http|https|ws|wss] [-k] [-c codec]
 *             [-v] [--loop] rtsp[s]://camera/stream (-i FILE | -d ALSA_DEVICE)
 *
 * The exchange (ONVIF Streaming Specification, "back channel connection"):
 *   OPTIONS    its Public header picks the keep-alive method, as ffmpeg does;
 *              a refusal is tolerated (some cameras answer 501);
 *   DESCRIBE   with "Require: www.onvif.org/ver20/backchannel": a server
 *              without back channel answers 551 (exit 3); one with it adds an
 *              m=audio section marked a=sendonly (ONVIF gives the direction
 *              from the client's side: sendonly = client to server);
 *   SETUP      of that section only, carrying the Require tag too;
 *   PLAY       aggregate, with the Require tag; no audio before its 200;
 *   RTP        the input decoded, resampled and encoded with FFmpeg, and
 *              packetized here (not by FFmpeg's rtp muxer: we need our own
 *              payload type, SSRC, timestamps and the transport framing of
 *              every transport, and each payload format is a few lines),
 *              paced in real time against the monotonic clock; SRTP when the
 *              section is RTP/SAVP with an SDES key (a=crypto);
 *   keep-alive GET_PARAMETER (or OPTIONS) every timeout/2 s;
 *   TEARDOWN   at the end of the input, after --duration, or on
 *              SIGINT/SIGTERM.
 *
 * Transports: UDP (an even/odd client port pair; RTP goes from our RTP port
 * to the server_port of the SETUP answer), TCP-interleaved ('$' frames on the
 * RTSP connection, RFC 2326 §10.12), the QuickTime HTTP tunnel (a GET for
 * the server-to-client half, a POST whose body carries every request and every
 * '$' frame base64-encoded, each message on its own), and WebSocket (the
 * interleaved byte stream in masked binary frames, subprotocol
 * rtsp.onvif.org). Any of the TCP ones can run inside TLS (OpenSSL): RTSPS,
 * the HTTPS tunnel, wss; the server's certificate is verified unless -k.
 *
 * Exit status: 0 done, 1 error, 2 usage, 3 the server has no back channel,
 * 4 no codec in common. Messages go to stderr.
 *
 * One thread: blocking plain sockets (non-blocking under TLS, see struct
 * link), poll() to wait for input and for the next packet's time; the RTP
 * path allocates nothing per packet.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <srtp2/srtp.h>

#include "proto/base64.h"
#include "proto/rtsp.h"
#include "proto/url.h"
#include "proto/ws.h"

#define BC_REQUIRE "www.onvif.org/ver20/backchannel"
#define USER_AGENT "rtsp-talk"
#define WS_PROTOCOL "rtsp.onvif.org"

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	EXIT_USAGE = 2,
	EXIT_NO_BACKCHANNEL = 3,
	EXIT_NO_CODEC = 4,
};

#define IN_CAP        (RTSP_MAX_HEADER_BYTES + RTSP_MAX_BODY + 4096)
#define MAX_PAYLOAD   1400     /* RTP payload; keeps a packet under a 1500-byte MTU */
#define QUEUE_LEN     256
#define CONNECT_MS    5000
#define WRITE_MS      10000    /* the longest a write may wait (a blocked or vanished server) */
#define LINGER_MS     500      /* after the last packet, before TEARDOWN: the peer's jitter buffer drains */

/* The one global: set from the signal handler, read by every wait. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---------------------------------------------------------------- messages */

__attribute__((format(printf, 1, 2)))
static void msg(const char *fmt, ...)
{
	va_list ap;
	fputs("rtsp-talk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *av_err(int err, char *buf, size_t len)
{
	av_strerror(err, buf, len);
	return buf;
}

/* An SDES key (a=crypto ... inline:KEY) is a secret: what we print (-v's
 * printout, which ends up in terminals, logs and bug reports, and the
 * messages about an a=crypto we refuse) shows it as "inline:...". An
 * a=crypto line may hold several keys ("inline:K1|2^20|1:4;inline:K2",
 * RFC 4568 §9.1), and "inline" may be written in any case. */

/* Where the next key in s[i..n) starts (after "inline:"), or n if there
 * is none; *end is where it ends: at '|', ';', a blank, a NUL or n. */
static size_t key_at(const char *s, size_t n, size_t i, size_t *end)
{
	for (; i + 7 <= n; i++) {
		if (strncasecmp(s + i, "inline:", 7))
			continue;
		size_t e = i + 7;
		while (e < n && s[e] && !strchr("|; \t", s[e]))
			e++;
		*end = e;
		return i + 7;
	}
	*end = n;
	return n;
}

/* s[0..n) to f, every key in it shown as "...". */
static void put_redacted(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; ) {
		size_t e, k = key_at(s, n, i, &e);
		fprintf(f, "%.*s%s", (int)(k - i), s + i, e > k ? "..." : "");
		i = e;
	}
}

/* s into out (cap > 0; truncated to fit), every key in it shown as "...". */
static void redact_into(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s), o = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && o + 1 < cap; ) {
		size_t e, k = key_at(s, n, i, &e);
		int w = snprintf(out + o, cap - o, "%.*s%s", (int)(k - i), s + i, e > k ? "..." : "");
		o += w > 0 ? (size_t)w : 0;
		i = e;
	}
}

/* Prints an RTSP message line by line with a direction prefix (-v), the
 * keys of its a=crypto lines hidden. */
static void dump(const char *prefix, const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && data[j] != '\n')
			j++;
		size_t n = j - i;
		if (n && data[i + n - 1] == '\r')
			n--;
		const char *line = data + i;
		fputs(prefix, stderr);
		if (n > 9 && !strncmp(line, "a=crypto:", 9))
			put_redacted(stderr, line, n);
		else
			fprintf(stderr, "%.*s", (int)n, line);
		fputc('\n', stderr);
		i = j + 1;
	}
}

/* ---------------------------------------------------------------- codecs */

enum codec_id { C_PCMU, C_PCMA, C_G722, C_G726, C_AAC, C_OPUS, C_NONE };

/* A -c value; g726_bits is set for "g726-N" (0 = any). -EINVAL if unknown. */
static int codec_from_cli(const char *s, enum codec_id *id, int *g726_bits)
{
	*g726_bits = 0;
	if (!strcasecmp(s, "pcmu") || !strcasecmp(s, "g711u") || !strcasecmp(s, "ulaw") || !strcasecmp(s, "mulaw"))
		*id = C_PCMU;
	else if (!strcasecmp(s, "pcma") || !strcasecmp(s, "g711a") || !strcasecmp(s, "alaw"))
		*id = C_PCMA;
	else if (!strcasecmp(s, "g722"))
		*id = C_G722;
	else if (!strcasecmp(s, "g726"))
		*id = C_G726;
	else if (!strncasecmp(s, "g726-", 5)) {
		int b = atoi(s + 5);
		if (b != 16 && b != 24 && b != 32 && b != 40)
			return -EINVAL;
		*id = C_G726;
		*g726_bits = b / 8;
	} else if (!strcasecmp(s, "aac") || !strcasecmp(s, "mpeg4-generic"))
		*id = C_AAC;
	else if (!strcasecmp(s, "opus"))
		*id = C_OPUS;
	else
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- SDP */

#define SDP_MAX_MEDIA  8
#define SDP_MAX_FMT    16
#define SDP_MAX_CRYPTO 4

struct sdp_fmt {
	int pt;
	char enc[32];          /* encoding name as written, "" without rtpmap */
	int clock;
	int channels;
	char fmtp[512];
};

enum sdp_dir { DIR_SENDRECV, DIR_SENDONLY, DIR_RECVONLY, DIR_INACTIVE };

struct sdp_media {
	char type[16];
	char proto[32];        /* "RTP/AVP", "RTP/SAVP", ... */
	int nfmt;
	struct sdp_fmt fmt[SDP_MAX_FMT];
	char control[512];
	enum sdp_dir dir;
	bool dir_given;
	int ncrypto;
	char crypto[SDP_MAX_CRYPTO][256];   /* the values of its a=crypto lines (SDES, RFC 4568) */
	bool key_mgmt;         /* a=key-mgmt (MIKEY, RFC 4567), here or at session level */
};

struct sdp_desc {
	char control[512];
	enum sdp_dir dir;      /* session-level default */
	bool key_mgmt;
	int nmedia;
	struct sdp_media media[SDP_MAX_MEDIA];
};

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void set_str(char *dst, size_t cap, const char *src)
{
	copy_str(dst, cap, src, strlen(src));
}

static struct sdp_fmt *sdp_find_fmt(struct sdp_media *m, int pt)
{
	for (int i = 0; i < m->nfmt; i++)
		if (m->fmt[i].pt == pt)
			return &m->fmt[i];
	return NULL;
}

static bool dir_attr(const char *a, size_t n, enum sdp_dir *d)
{
	static const struct { const char *s; enum sdp_dir d; } dirs[] = {
		{ "sendrecv", DIR_SENDRECV }, { "sendonly", DIR_SENDONLY },
		{ "recvonly", DIR_RECVONLY }, { "inactive", DIR_INACTIVE },
	};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (n == strlen(dirs[i].s) && !strncmp(a, dirs[i].s, n)) {
			*d = dirs[i].d;
			return true;
		}
	return false;
}

/* Parses the lines we need: m=, a=control, a=rtpmap, a=fmtp and the
 * direction attributes. Unknown lines are skipped; a malformed m= line is
 * -EBADMSG. Static payload types without rtpmap get their RFC 3551 names. */
static int sdp_parse(const char *sdp, size_t len, struct sdp_desc *d)
{
	memset(d, 0, sizeof(*d));
	struct sdp_media *m = NULL;
	const char *p = sdp, *end = sdp + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		size_t n = (size_t)((eol ? eol : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		char line[1024];
		copy_str(line, sizeof(line), p, n);
		p = next;
		if (!strncmp(line, "m=", 2)) {
			if (d->nmedia == SDP_MAX_MEDIA) {
				m = NULL;
				continue;
			}
			m = &d->media[d->nmedia++];
			char *save = NULL, *tok = strtok_r(line + 2, " ", &save);
			if (!tok)
				return -EBADMSG;
			copy_str(m->type, sizeof(m->type), tok, strlen(tok));
			if (!strtok_r(NULL, " ", &save) || !(tok = strtok_r(NULL, " ", &save)))   /* port, proto */
				return -EBADMSG;
			copy_str(m->proto, sizeof(m->proto), tok, strlen(tok));
			while ((tok = strtok_r(NULL, " ", &save)) && m->nfmt < SDP_MAX_FMT) {
				char *e;
				long pt = strtol(tok, &e, 10);
				if (*e || pt < 0 || pt > 127)
					continue;
				struct sdp_fmt *f = &m->fmt[m->nfmt++];
				f->pt = (int)pt;
				f->channels = 1;
				static const struct { int pt; const char *name; } st[] = {
					{ 0, "PCMU" }, { 8, "PCMA" }, { 9, "G722" },
				};
				for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
					if (st[i].pt == pt) {
						set_str(f->enc, sizeof(f->enc), st[i].name);
						f->clock = 8000;
					}
			}
			continue;
		}
		if (strncmp(line, "a=", 2))
			continue;
		const char *a = line + 2;
		enum sdp_dir dir;
		if (dir_attr(a, strlen(a), &dir)) {
			if (m) {
				m->dir = dir;
				m->dir_given = true;
			} else {
				d->dir = dir;
			}
		} else if (!strncmp(a, "crypto:", 7)) {
			if (m && m->ncrypto < SDP_MAX_CRYPTO) {
				const char *v = a + 7;
				copy_str(m->crypto[m->ncrypto], sizeof(m->crypto[0]), v, strlen(v));
				m->ncrypto++;
			}
		} else if (!strncmp(a, "key-mgmt:", 9)) {
			if (m)
				m->key_mgmt = true;
			else
				d->key_mgmt = true;
		} else if (!strncmp(a, "control:", 8)) {
			const char *v = a + 8;
			while (*v == ' ')
				v++;
			if (m)
				copy_str(m->control, sizeof(m->control), v, strlen(v));
			else
				copy_str(d->control, sizeof(d->control), v, strlen(v));
		} else if (m && (!strncmp(a, "rtpmap:", 7) || !strncmp(a, "fmtp:", 5))) {
			bool rtpmap = a[0] == 'r';
			const char *num = a + (rtpmap ? 7 : 5);
			while (*num == ' ')
				num++;
			char *e;
			long pt = strtol(num, &e, 10);
			/* digits, in range (not 256 or 2^32 read as 0), then a blank */
			if (!isdigit((unsigned char)*num) || pt > 127 || (*e != ' ' && *e != '\t'))
				continue;
			struct sdp_fmt *f = sdp_find_fmt(m, (int)pt);
			if (!f)
				continue;
			while (*e == ' ' || *e == '\t')
				e++;
			if (!rtpmap) {
				copy_str(f->fmtp, sizeof(f->fmtp), e, strlen(e));
				continue;
			}
			/* ENC/clock[/channels] */
			char *slash = strchr(e, '/');
			copy_str(f->enc, sizeof(f->enc), e, slash ? (size_t)(slash - e) : strlen(e));
			if (slash) {
				/* numbers out of any sane range read as 0 (atoi's overflow
				 * is undefined) */
				long v = strtol(slash + 1, NULL, 10);
				f->clock = v > 0 && v <= 10000000 ? (int)v : 0;
				char *s2 = strchr(slash + 1, '/');
				v = s2 ? strtol(s2 + 1, NULL, 10) : 1;
				f->channels = v >= 1 && v <= 255 ? (int)v : 1;
			}
		}
	}
	for (int i = 0; i < d->nmedia; i++) {
		if (!d->media[i].dir_given)
			d->media[i].dir = d->dir;
		if (d->key_mgmt)
			d->media[i].key_mgmt = true;
	}
	return 0;
}

/* Value of key in an fmtp parameter list "a=1; b=2" (case-insensitive). */
static bool fmtp_get(const char *fmtp, const char *key, char *val, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = fmtp;
	while (*p) {
		while (*p == ' ' || *p == ';' || *p == '\t')
			p++;
		const char *e = p;
		while (*e && *e != ';')
			e++;
		if ((size_t)(e - p) > klen && !strncasecmp(p, key, klen) && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = (size_t)(e - v);
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			copy_str(val, cap, v, n);
			return true;
		}
		p = e;
	}
	return false;
}

/* What a format of the SDP is, for us: C_NONE if we cannot send it. */
static enum codec_id fmt_codec(const struct sdp_fmt *f, int *g726_bits, bool *g726_aal2)
{
	*g726_bits = 0;
	*g726_aal2 = false;
	const char *e = f->enc;
	if (!strcasecmp(e, "PCMU"))
		return C_PCMU;
	if (!strcasecmp(e, "PCMA"))
		return C_PCMA;
	if (!strcasecmp(e, "G722"))
		return C_G722;
	if (!strncasecmp(e, "AAL2-", 5)) {
		*g726_aal2 = true;
		e += 5;
	}
	if (!strncasecmp(e, "G726-", 5)) {
		int b = atoi(e + 5);
		if (b != 16 && b != 24 && b != 32 && b != 40)
			return C_NONE;
		*g726_bits = b / 8;
		return C_G726;
	}
	if (!strcasecmp(e, "MPEG4-GENERIC")) {
		char mode[32] = "";
		/* Only the AAC modes; CELP etc. are not AAC. */
		if (fmtp_get(f->fmtp, "mode", mode, sizeof(mode)) && strncasecmp(mode, "AAC-", 4))
			return C_NONE;
		return f->clock > 0 ? C_AAC : C_NONE;
	}
	if (!strcasecmp(e, "OPUS"))
		return C_OPUS;
	return C_NONE;
}

/* ---------------------------------------------------------------- URLs */

/* How the RTSP connection (and with TCP the media) reaches the server. */
enum xport { XP_UDP, XP_TCP, XP_HTTP, XP_WS };

struct target {
	char url[1200];        /* the URL without user info: requests use it */
	char host[256];        /* without the [] of an IPv6 literal */
	int port;
	char path[1100];       /* "/path?query" as written, for the tunnel's GET and POST */
	char user[128], pass[128];
	bool userinfo;
	bool tls;              /* rtsps://, rtspsu://, rtspst://, rtspsh:// */
	enum xport xport;      /* what the scheme implies: rtsph:// the HTTP tunnel, ... */
	bool port_given;
};

static int hexval(char ch)
{
	int c = (unsigned char)ch;
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void pct_decode(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			dst[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			dst[o++] = s[i];
		}
	}
	dst[o] = 0;
}

/* The schemes GStreamer's rtspsrc knows: "s" = TLS (RFC 7826 rtsps), then
 * "u" UDP, "t" TCP, "h" the HTTP tunnel. ffmpeg's rtsps:// is RTSP over TLS
 * with the media interleaved in it, so rtsps:// defaults to TCP. */
static const struct { const char *name; bool tls; enum xport xport; } schemes[] = {
	{ "rtsp", false, XP_UDP }, { "rtspu", false, XP_UDP }, { "rtspt", false, XP_TCP },
	{ "rtsph", false, XP_HTTP }, { "rtsps", true, XP_TCP }, { "rtspsu", true, XP_UDP },
	{ "rtspst", true, XP_TCP }, { "rtspsh", true, XP_HTTP },
};

static int target_secure(struct target *t);

static int target_parse(const char *url, struct target *t)
{
	memset(t, 0, sizeof(*t));
	const char *sep = strstr(url, "://");
	if (!sep)
		return -EINVAL;
	size_t slen = (size_t)(sep - url);
	size_t k = 0;
	while (k < sizeof(schemes) / sizeof(schemes[0]) &&
	       !(slen == strlen(schemes[k].name) && !strncasecmp(url, schemes[k].name, slen)))
		k++;
	if (k == sizeof(schemes) / sizeof(schemes[0]))
		return -EPROTONOSUPPORT;
	t->tls = schemes[k].tls;
	t->xport = schemes[k].xport;
	const char *auth = sep + 3;
	const char *aend = auth + strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *q = auth; q < aend; q++)
		if (*q == '@')
			at = q;
	const char *hostpart = auth;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
		pct_decode(t->user, sizeof(t->user), auth, ulen);
		if (colon)
			pct_decode(t->pass, sizeof(t->pass), colon + 1, (size_t)(at - colon - 1));
		t->userinfo = true;
		hostpart = at + 1;
	}
	/* The URL the server sees: rtsp:// (rtsps:// once the transport is
	 * known to be TLS, see target_secure), without user info or fragment. */
	size_t rest = strcspn(hostpart, "#");
	int n = snprintf(t->url, sizeof(t->url), "rtsp://%.*s", (int)rest, hostpart);
	if (n < 0 || (size_t)n >= sizeof(t->url))
		return -EINVAL;
	struct rtsp_url u;
	if (rtsp_url_parse(t->url, &u) < 0 || !u.host[0])
		return -EINVAL;
	set_str(t->host, sizeof(t->host), u.host);
	t->port_given = u.port > 0;
	t->port = u.port > 0 ? u.port : t->tls ? 322 : 554;
	const char *path = hostpart + strcspn(hostpart, "/?#");
	n = snprintf(t->path, sizeof(t->path), "%s%.*s", *path == '/' ? "" : "/",
		     (int)strcspn(path, "#"), path);
	if (n < 0 || (size_t)n >= sizeof(t->path))
		return -EINVAL;
	return t->tls ? target_secure(t) : 0;
}

/* The transport runs in TLS (-t https / wss on an rtsp:// URL): requests
 * name the resource rtsps://, as ffmpeg does for RTSPS, and the default
 * port is 322 (ffmpeg's for rtsps:// too). */
static int target_secure(struct target *t)
{
	t->tls = true;
	if (!t->port_given)
		t->port = 322;
	if (!strncmp(t->url, "rtsps://", 8))
		return 0;
	char u[sizeof(t->url)];
	int n = snprintf(u, sizeof(u), "rtsps://%s", t->url + 7);
	if (n < 0 || (size_t)n >= sizeof(u))
		return -EINVAL;
	memcpy(t->url, u, (size_t)n + 1);
	return 0;
}

/* base + control, as ffmpeg and gortsplib join them: an absolute control
 * as is, "*" = the base, a path from the root on the base's authority,
 * otherwise base + '/' + control (RFC 2326 App C.1.1 via Content-Base). */
static int url_join(const char *base, const char *control, char *out, size_t cap)
{
	int n;
	if (!control[0] || !strcmp(control, "*"))
		n = snprintf(out, cap, "%s", base);
	else if (!strncasecmp(control, "rtsp://", 7) || !strncasecmp(control, "rtsps://", 8))
		n = snprintf(out, cap, "%s", control);
	else if (control[0] == '/') {
		const char *s = strstr(base, "://");
		const char *pathp = s ? s + 3 + strcspn(s + 3, "/") : base + strlen(base);
		n = snprintf(out, cap, "%.*s%s", (int)(pathp - base), base, control);
	} else {
		size_t bl = strlen(base);
		n = snprintf(out, cap, "%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", control);
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	/* A URL goes into a request line: a space or a control character
	 * (from a Content-Base or an a=control) would break the request. */
	for (const char *p = out; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- auth */

enum auth_scheme { AUTH_NONE, AUTH_BASIC, AUTH_DIGEST };

struct auth {
	char user[128], pass[128];
	bool creds;
	enum auth_scheme scheme;
	char realm[256], nonce[256], opaque[256], algorithm[32];
	const EVP_MD *md;
	bool sess;
	bool qop;              /* qop=auth offered: use the RFC 2617 form */
	unsigned nc;
};

struct challenge {
	enum auth_scheme scheme;
	char realm[256], nonce[256], opaque[256], algorithm[32], qop[64];
	bool stale;
};

/* Reads "token" or token=value / token="value" items of a WWW-Authenticate
 * value. One header may hold several challenges ("Basic realm=x, Digest
 * ..."): a token not followed by '=' starts a new one. Calls done() per
 * complete challenge. */
static void parse_challenges(const char *v, void (*done)(const struct challenge *, void *), void *arg)
{
	struct challenge c;
	bool open = false;
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *k = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		size_t klen = (size_t)(p - k);
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '=') {
			/* a scheme name */
			if (open)
				done(&c, arg);
			memset(&c, 0, sizeof(c));
			open = true;
			c.scheme = klen == 5 && !strncasecmp(k, "Basic", 5) ? AUTH_BASIC :
				   klen == 6 && !strncasecmp(k, "Digest", 6) ? AUTH_DIGEST : AUTH_NONE;
			continue;
		}
		p = q + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		char val[256];
		size_t vn = 0;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (vn + 1 < sizeof(val))
					val[vn++] = *p;
				p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != ' ' && *p != '\t') {
				if (vn + 1 < sizeof(val))
					val[vn++] = *p;
				p++;
			}
		}
		val[vn] = 0;
		if (!open)
			continue;
#define KEY(s) (klen == sizeof(s) - 1 && !strncasecmp(k, s, klen))
		if (KEY("realm"))
			set_str(c.realm, sizeof(c.realm), val);
		else if (KEY("nonce"))
			set_str(c.nonce, sizeof(c.nonce), val);
		else if (KEY("opaque"))
			set_str(c.opaque, sizeof(c.opaque), val);
		else if (KEY("algorithm"))
			set_str(c.algorithm, sizeof(c.algorithm), val);
		else if (KEY("qop"))
			set_str(c.qop, sizeof(c.qop), val);
		else if (KEY("stale"))
			c.stale = !strcasecmp(val, "true");
#undef KEY
	}
	if (open)
		done(&c, arg);
}

struct pick {
	struct challenge best;
	int rank;              /* 0 none, 1 Basic, 2 Digest MD5, 3 Digest SHA-256 */
	bool stale;
};

/* qop is a list ("auth,auth-int"); "auth" must be in it. */
static bool qop_has_auth(const char *qop)
{
	const char *p = qop;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 4 && !strncasecmp(p, "auth", 4))
			return true;
		p += n;
	}
	return false;
}

static void pick_one(const struct challenge *c, void *arg)
{
	struct pick *pk = arg;
	int rank = 0;
	if (c->scheme == AUTH_BASIC) {
		rank = 1;
	} else if (c->scheme == AUTH_DIGEST && c->nonce[0]) {
		if (c->qop[0] && !qop_has_auth(c->qop))
			return;    /* auth-int only: not for us */
		const char *a = c->algorithm;
		if (!a[0] || !strcasecmp(a, "MD5") || !strcasecmp(a, "MD5-sess"))
			rank = 2;
		else if (!strcasecmp(a, "SHA-256") || !strcasecmp(a, "SHA-256-sess"))
			rank = 3;
	}
	if (rank > pk->rank) {
		pk->rank = rank;
		pk->best = *c;
	}
	if (c->stale)
		pk->stale = true;
}

/* Takes the strongest challenge of a 401: Digest SHA-256, then Digest MD5,
 * then Basic. Returns 1 if the challenge is only a stale nonce (retry
 * silently), 0 if usable, -EACCES if nothing is usable. */
static int auth_from_response(struct auth *a, const struct rtsp_response *r)
{
	struct pick pk;
	memset(&pk, 0, sizeof(pk));
	for (int i = 0; i < r->nheaders; i++)
		if (!strcasecmp(r->headers[i].name, "WWW-Authenticate"))
			parse_challenges(r->headers[i].value, pick_one, &pk);
	if (!pk.rank)
		return -EACCES;
	const struct challenge *c = &pk.best;
	a->scheme = c->scheme;
	if (c->scheme == AUTH_DIGEST) {
		set_str(a->realm, sizeof(a->realm), c->realm);
		set_str(a->nonce, sizeof(a->nonce), c->nonce);
		set_str(a->opaque, sizeof(a->opaque), c->opaque);
		set_str(a->algorithm, sizeof(a->algorithm), c->algorithm);
		a->md = pk.rank == 3 ? EVP_sha256() : EVP_md5();
		a->sess = strcasestr(c->algorithm, "-sess") != NULL;
		a->qop = c->qop[0] != 0;
		a->nc = 0;
	}
	return pk.stale ? 1 : 0;
}

static void hash_hex(const EVP_MD *md, const char *s, char *out)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), h, &n, md, NULL);
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
	out[2 * n] = 0;
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char b[32];
	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	if (getrandom(b, nbytes, 0) != (ssize_t)nbytes)
		for (size_t i = 0; i < nbytes; i++)
			b[i] = (unsigned char)rand();
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Appends to out (cap bytes) at *n; false when it does not fit. */
__attribute__((format(printf, 4, 5)))
static bool appendf(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
	if (*n >= cap)
		return false;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(out + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= cap - *n)
		return false;
	*n += (size_t)w;
	return true;
}

/* name="s", s as a quoted-string (RFC 7230 §3.2.6: '"' and '\' escaped):
 * the server's realm, nonce and opaque go back as it meant them. */
static bool append_quoted(char *out, size_t cap, size_t *n, const char *name, const char *s)
{
	if (!appendf(out, cap, n, "%s=\"", name))
		return false;
	for (; *s; s++) {
		bool ok = *s == '"' || *s == '\\' ? appendf(out, cap, n, "\\%c", *s) : appendf(out, cap, n, "%c", *s);
		if (!ok)
			return false;
	}
	return appendf(out, cap, n, "\"");
}

/* "Authorization: ...\r\n" for method and uri, or "" when not needed.
 * -ENOSPC (out "") when it does not fit in cap. */
static int auth_header(struct auth *a, const char *method, const char *uri, char *out, size_t cap)
{
	out[0] = 0;
	if (!a->creds || a->scheme == AUTH_NONE)
		return 0;
	if (a->scheme == AUTH_BASIC) {
		char up[300], b64[420];
		snprintf(up, sizeof(up), "%s:%s", a->user, a->pass);
		b64_encode((const uint8_t *)up, strlen(up), b64);
		size_t n = 0;
		if (!appendf(out, cap, &n, "Authorization: Basic %s\r\n", b64)) {
			out[0] = 0;
			return -ENOSPC;
		}
		return 0;
	}
	/* RFC 2617 §3.2.2.1-3, with the hash of RFC 7616 when SHA-256 */
	char buf[1400], ha1[2 * EVP_MAX_MD_SIZE + 1], ha2[sizeof(ha1)], resp[sizeof(ha1)];
	char cnonce[33];
	random_hex(cnonce, 8);
	snprintf(buf, sizeof(buf), "%s:%s:%s", a->user, a->realm, a->pass);
	hash_hex(a->md, buf, ha1);
	if (a->sess) {
		snprintf(buf, sizeof(buf), "%s:%s:%s", ha1, a->nonce, cnonce);
		hash_hex(a->md, buf, ha1);
	}
	snprintf(buf, sizeof(buf), "%s:%s", method, uri);
	hash_hex(a->md, buf, ha2);
	char nc[9];
	snprintf(nc, sizeof(nc), "%08x", ++a->nc);
	if (a->qop)
		snprintf(buf, sizeof(buf), "%s:%s:%s:%s:auth:%s", ha1, a->nonce, nc, cnonce, ha2);
	else
		snprintf(buf, sizeof(buf), "%s:%s:%s", ha1, a->nonce, ha2);
	hash_hex(a->md, buf, resp);
	/* A long realm, nonce and opaque with a long URI (the server's
	 * Content-Base and control) may not fit: said, never overrun. */
	size_t n = 0;
	bool ok = appendf(out, cap, &n, "Authorization: Digest ") && append_quoted(out, cap, &n, "username", a->user) &&
		  append_quoted(out, cap, &n, ", realm", a->realm) && append_quoted(out, cap, &n, ", nonce", a->nonce) &&
		  append_quoted(out, cap, &n, ", uri", uri) && appendf(out, cap, &n, ", response=\"%s\"", resp) &&
		  (!a->algorithm[0] || appendf(out, cap, &n, ", algorithm=%s", a->algorithm)) &&
		  (!a->opaque[0] || append_quoted(out, cap, &n, ", opaque", a->opaque)) &&
		  (!a->qop || appendf(out, cap, &n, ", qop=auth, nc=%s, cnonce=\"%s\"", nc, cnonce)) &&
		  appendf(out, cap, &n, "\r\n");
	if (!ok) {
		out[0] = 0;
		return -ENOSPC;
	}
	return 0;
}

/* ---------------------------------------------------------------- connection */

/* One TCP connection to the server, and the TLS session over it when the
 * transport is secure. A TLS socket is non-blocking: poll() can say
 * "readable" when only part of a record is there, and a blocking SSL_read
 * would then hold the packets that are due; its writes wait in poll()
 * instead (WRITE_MS at most), like the SO_SNDTIMEO of a plain socket. */
struct link {
	int fd;
	SSL *ssl;
};

struct conn {
	struct link rd;        /* RTSP connection, the tunnel's GET (server to client), or the WebSocket */
	struct link post;      /* the tunnel's POST (client to server); fd -1 otherwise */
	bool ws;               /* RTSP in WebSocket frames (after the upgrade) */
	bool ws_closed;        /* we sent our close frame */
	uint8_t ws_in[IN_CAP + 16];   /* frames read but not yet decoded into in */
	size_t ws_inlen;
	char in[IN_CAP];
	size_t inlen;
	struct rtsp_request req;   /* a request from the server (App D.1) */
	uint8_t *obuf;         /* building what goes out: the POST's base64, a WebSocket frame */
	size_t obufcap;
	bool verbose;
};

static int tcp_connect(const char *host, int port, struct sockaddr_storage *peer, socklen_t *peerlen)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int gai = getaddrinfo(host, ps, &hints, &res);
	if (gai) {
		msg("cannot resolve %s: %s", host, gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	int err = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* Non-blocking connect with a deadline: an unreachable camera must
		 * fail in seconds, not after the kernel's minutes of SYN retries. */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int pr;
		do
			pr = poll(&pfd, 1, CONNECT_MS);
		while (pr < 0 && errno == EINTR && !g_stop);
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (pr <= 0) {
			err = pr == 0 ? -ETIMEDOUT : -errno;
			close(fd);
			continue;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			err = -soerr;
			close(fd);
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		/* Writes stay blocking (they are small) but never hang for good. */
		struct timeval tv = { .tv_sec = 10 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (peer) {
			memcpy(peer, ai->ai_addr, ai->ai_addrlen);
			*peerlen = ai->ai_addrlen;
		}
		freeaddrinfo(res);
		return fd;
	}
	freeaddrinfo(res);
	msg("cannot connect to %s port %d: %s", host, port, strerror(-err));
	return err;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---------------------------------------------------------------- TLS */

/* The client context: TLS 1.2 or later (what rtspd and current cameras
 * speak), the server's certificate checked against the system's trust
 * store (OpenSSL's default paths, which SSL_CERT_FILE / SSL_CERT_DIR
 * override) or --ca-file, unless -k. The host name is checked per
 * connection (tls_handshake). NULL after a message. */
static SSL_CTX *tls_context(bool verify, const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		msg("TLS: cannot make a context: %s", ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A server that closes without close_notify has still closed: report
	 * it as the end of the connection, not as a TLS error. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (verify) {
		int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			msg("TLS: cannot load the trusted certificates%s%s: %s", ca_file ? " from " : "",
			    ca_file ? ca_file : "", ERR_reason_error_string(ERR_get_error()));
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The handshake on a connected l->fd, within timeout_ms. With verify the
 * certificate must chain to a trusted CA and name host (a DNS name, or an
 * IP address in its subjectAltName when host is one). 0, or -errno after
 * a message that says why (-EACCES: the certificate). */
static int tls_handshake(SSL_CTX *ctx, struct link *l, const char *host, bool verify, int timeout_ms)
{
	l->ssl = SSL_new(ctx);
	if (!l->ssl || SSL_set_fd(l->ssl, l->fd) != 1)
		return -ENOMEM;
	bool ip = is_ip_literal(host);
	if (!ip)
		SSL_set_tlsext_host_name(l->ssl, host);   /* SNI is for names only (RFC 6066 §3) */
	if (verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(l->ssl);
		if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : X509_VERIFY_PARAM_set1_host(vp, host, 0)) != 1)
			return -EINVAL;
	}
	fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(l->ssl);
		if (r == 1)
			return 0;
		int e = SSL_get_error(l->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int64_t left = deadline - now_us();
			if (left <= 0 || g_stop) {
				msg("TLS handshake with %s: %s", host, g_stop ? "interrupted" : "no answer");
				return g_stop ? -EINTR : -ETIMEDOUT;
			}
			struct pollfd pfd = { .fd = l->fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
			poll(&pfd, 1, (int)(left / 1000) + 1);
			continue;
		}
		long vr = SSL_get_verify_result(l->ssl);
		if (verify && vr != X509_V_OK) {
			msg("TLS: the certificate of %s is not trusted: %s (-k/--insecure connects anyway; "
			    "--ca-file FILE trusts a CA of your own)", host, X509_verify_cert_error_string(vr));
			return -EACCES;
		}
		unsigned long err = ERR_get_error();
		msg("TLS handshake with %s failed: %s", host,
		    err ? ERR_reason_error_string(err) : e == SSL_ERROR_SYSCALL ? "the server closed the connection"
		    : "protocol error");
		return -EPROTO;
	}
}

/* ---------------------------------------------------------------- links */

static int link_write_all(struct link *l, const void *data, size_t len)
{
	if (!l->ssl)
		return write_all(l->fd, data, len);
	const char *p = data;
	int64_t deadline = now_us() + (int64_t)WRITE_MS * 1000;
	while (len) {
		ERR_clear_error();
		/* Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write sends all of
		 * it or nothing; after WANT_* it is called again the same way. */
		int n = SSL_write(l->ssl, p, len > 65536 ? 65536 : (int)len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		int e = SSL_get_error(l->ssl, n);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return e == SSL_ERROR_SYSCALL && errno ? -errno : -EPIPE;
		int64_t left = deadline - now_us();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = l->fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT };
		if (poll(&pfd, 1, (int)(left / 1000) + 1) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Reads what is there without waiting: > 0 bytes, 0 for nothing yet (or
 * only part of a TLS record), -ECONNRESET when the server closed. */
static int link_read(struct link *l, void *buf, size_t cap)
{
	if (!l->ssl) {
		ssize_t n = recv(l->fd, buf, cap, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
		return n == 0 ? -ECONNRESET : (int)n;
	}
	ERR_clear_error();
	int n = SSL_read(l->ssl, buf, cap > 65536 ? 65536 : (int)cap);
	if (n > 0)
		return n;
	int e = SSL_get_error(l->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno && errno != EPIPE && errno != ECONNRESET)
		return -errno;
	if (e == SSL_ERROR_SSL) {
		msg("TLS: %s", ERR_reason_error_string(ERR_get_error()));
		return -EPROTO;
	}
	return -ECONNRESET;
}

/* Decrypted bytes OpenSSL holds already: poll() would not see them. */
static bool link_pending(const struct link *l)
{
	return l->ssl && SSL_has_pending(l->ssl);
}

static void link_close(struct link *l)
{
	if (l->ssl) {
		SSL_shutdown(l->ssl);   /* close_notify, best effort (non-blocking) */
		SSL_free(l->ssl);
		l->ssl = NULL;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* ---------------------------------------------------------------- WebSocket (RFC 6455) */

static int obuf_reserve(struct conn *c, size_t need)
{
	if (need <= c->obufcap)
		return 0;
	uint8_t *nb = realloc(c->obuf, need);
	if (!nb)
		return -ENOMEM;
	c->obuf = nb;
	c->obufcap = need;
	return 0;
}

/* One frame with FIN, masked as a client's must be (§5.3), with a fresh
 * key from OpenSSL's CSPRNG; header and payload in one write (one TLS
 * record under wss). */
static int ws_send(struct conn *c, uint8_t opcode, const void *data, size_t len)
{
	int r = obuf_reserve(c, len + 14);
	if (r < 0)
		return r;
	uint8_t *h = c->obuf;
	size_t hl = 2;
	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[1] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	uint8_t *mask = h + hl;
	if (RAND_bytes(mask, 4) != 1)
		return -EIO;
	const uint8_t *src = data;
	uint8_t *dst = mask + 4;
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i] ^ mask[i & 3];
	return link_write_all(&c->rd, c->obuf, hl + 4 + len);
}

/* Our close frame (status 1000, normal closure), once. */
static void ws_close(struct conn *c)
{
	if (!c->ws || c->ws_closed || c->rd.fd < 0)
		return;
	c->ws_closed = true;
	static const uint8_t normal[2] = { 1000 >> 8, 1000 & 0xff };
	ws_send(c, WS_CLOSE, normal, sizeof(normal));
}

/* Moves the payloads of the complete frames in ws_in into the RTSP input:
 * data frames (binary, text, continuation: one byte stream, whatever the
 * message boundaries, as PROTOCOL-NOTES §4 says servers may split it) are
 * appended, a ping is answered with a pong, a close with a close. Returns
 * the bytes appended, -ECONNRESET after a close, -EPROTO for a malformed
 * frame, -ENOBUFS when a frame cannot fit even into an empty input. */
static int ws_decode(struct conn *c)
{
	size_t added = 0, off = 0;
	int r = 0;
	while (off < c->ws_inlen) {
		struct ws_frame f;
		long n = ws_parse_frame(c->ws_in + off, c->ws_inlen - off, &f);
		if (n == 0)
			break;
		if (n < 0) {
			msg("WebSocket: a malformed frame from the server");
			r = -EPROTO;
			break;
		}
		uint8_t *p = c->ws_in + off + f.header_len;
		if (f.masked)   /* servers must not mask (§5.1); harmless to undo */
			ws_unmask(p, (size_t)f.len, f.mask, 0);
		if (f.opcode == WS_BINARY || f.opcode == WS_TEXT || f.opcode == WS_CONTINUATION) {
			if (f.len > sizeof(c->in) - c->inlen) {
				if (!added && !c->inlen)
					r = -ENOBUFS;
				break;   /* the rest once the parser has taken what is there */
			}
			memcpy(c->in + c->inlen, p, (size_t)f.len);
			c->inlen += (size_t)f.len;
			added += (size_t)f.len;
		} else if (f.opcode == WS_PING) {
			ws_send(c, WS_PONG, p, (size_t)f.len);
		} else if (f.opcode == WS_CLOSE) {
			if (c->verbose)
				msg("WebSocket: the server closed (status %d)", f.len >= 2 ? p[0] << 8 | p[1] : 1005);
			if (!c->ws_closed) {
				c->ws_closed = true;
				ws_send(c, WS_CLOSE, p, f.len >= 2 ? 2 : 0);   /* echo its status (§5.5.1) */
			}
			r = -ECONNRESET;
			off += (size_t)n;
			break;
		}
		off += (size_t)n;
	}
	memmove(c->ws_in, c->ws_in + off, c->ws_inlen - off);
	c->ws_inlen -= off;
	return r < 0 && !added ? r : (int)added;
}

/* Everything the client sends goes through here: raw on the RTSP
 * connection, base64 on the tunnel's POST (one blob per message, with its
 * own padding, as ffmpeg does: servers restart decoding after '='), one
 * binary frame per message or '$' frame on a WebSocket. */
static int conn_send(struct conn *c, const void *data, size_t len)
{
	if (c->ws)
		return ws_send(c, WS_BINARY, data, len);
	if (c->post.fd < 0)
		return link_write_all(&c->rd, data, len);
	int r = obuf_reserve(c, 4 * ((len + 2) / 3) + 1);
	if (r < 0)
		return r;
	size_t n = b64_encode(data, len, (char *)c->obuf);
	return link_write_all(&c->post, c->obuf, n);
}

/* Reads what is there (waiting up to timeout_ms). 0 on timeout, > 0 bytes,
 * -ECONNRESET when the server closed, -EINTR on a signal, -ENOBUFS if a
 * message does not fit the buffer. */
static int conn_fill(struct conn *c, int timeout_ms)
{
	if (c->inlen == sizeof(c->in))
		return -ENOBUFS;
	if (c->ws && c->ws_inlen) {
		int r = ws_decode(c);
		if (r != 0)
			return r;
	}
	if (!link_pending(&c->rd)) {
		struct pollfd pfd = { .fd = c->rd.fd, .events = POLLIN };
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (pr == 0)
			return 0;
	}
	if (!c->ws) {
		int n = link_read(&c->rd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n > 0)
			c->inlen += (size_t)n;
		return n;
	}
	if (c->ws_inlen == sizeof(c->ws_in))
		return -ENOBUFS;
	int n = link_read(&c->rd, c->ws_in + c->ws_inlen, sizeof(c->ws_in) - c->ws_inlen);
	if (n <= 0)
		return n;
	c->ws_inlen += (size_t)n;
	return ws_decode(c);
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

/* Takes the next complete RTSP response out of the input: skips '$' frames
 * (RTCP from the server) and answers requests the server sends (RFC 2326
 * App D.1: a client must). 1 with *resp filled (its body points into c->in
 * until conn_consume(c, resp->total_len)), 0 if incomplete, -EBADMSG. */
static int conn_next_response(struct conn *c, struct rtsp_response *resp)
{
	for (;;) {
		size_t skip = rtsp_skip_blank_lines(c->in, c->inlen);
		if (skip)
			conn_consume(c, skip);
		if (!c->inlen)
			return 0;
		if (c->in[0] == '$') {
			if (c->inlen < 4)
				return 0;
			size_t flen = 4 + ((size_t)(uint8_t)c->in[2] << 8 | (uint8_t)c->in[3]);
			if (c->inlen < flen)
				return 0;
			conn_consume(c, flen);
			continue;
		}
		if (c->inlen < 5)
			return 0;
		if (!strncmp(c->in, "RTSP/", 5)) {
			int n = rtsp_parse_response(c->in, c->inlen, resp);
			if (n < 0)
				return -EBADMSG;
			if (n == 0)
				return 0;
			if (c->verbose)
				dump("< ", c->in, (size_t)n);
			return 1;
		}
		struct rtsp_request *req = &c->req;
		int n = rtsp_parse_request(c->in, c->inlen, req);
		if (n < 0)
			return -EBADMSG;
		if (n == 0)
			return 0;
		if (c->verbose)
			dump("<< ", c->in, (size_t)n);
		char ans[256];
		bool ok = !strcmp(req->method, "OPTIONS") || !strcmp(req->method, "GET_PARAMETER");
		int an = rtsp_response_begin(ans, sizeof(ans), ok ? 200 : 501, req->cseq);
		if (an > 0 && (size_t)an + 3 <= sizeof(ans)) {
			memcpy(ans + an, "\r\n", 3);
			conn_send(c, ans, (size_t)an + 2);
		}
		conn_consume(c, (size_t)n);
	}
}

/* ---------------------------------------------------------------- RTSP session */

struct talk {
	struct target tgt;
	struct auth auth;
	struct conn *c;
	struct rtsp_response resp;
	bool verbose;
	int cseq;
	char session[128];
	int timeout_s;
	bool get_parameter;    /* keep-alive method: GET_PARAMETER if Public lists it */
	char base[1200];       /* Content-Base */
	char aggregate[1200];  /* PLAY / TEARDOWN URL */
	char setup_url[1200];
	int timeout_ms;        /* per response */
	SSL_CTX *tls;          /* when the transport is TLS */
	bool verify;           /* check the server's certificate (not -k) */
	const char *ws_path;   /* the WebSocket's path (--ws-path) */
};

/* Sends one request; returns its CSeq. extra: more header lines (CRLF each). */
static int rtsp_send(struct talk *t, const char *method, const char *uri, const char *extra)
{
	char authz[2048];
	if (auth_header(&t->auth, method, uri, authz, sizeof(authz)) < 0)
		return -ENOSPC;
	char sess[160] = "";
	if (t->session[0])
		snprintf(sess, sizeof(sess), "Session: %s\r\n", t->session);
	char req[4096];
	int cseq = ++t->cseq;
	int n = snprintf(req, sizeof(req), "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: " USER_AGENT "\r\n%s%s%s\r\n",
			 method, uri, cseq, authz, sess, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENOSPC;
	if (t->verbose)
		dump("> ", req, (size_t)n);
	int r = conn_send(t->c, req, (size_t)n);
	return r < 0 ? r : cseq;
}

/* Sends a request and waits for its response (in t->resp; the body is
 * copied to body, NUL-terminated). Answers a 401 once with the credentials
 * (again on a stale nonce). Returns the status or -errno. */
static int rtsp_transact(struct talk *t, const char *method, const char *uri, const char *extra,
			 char *body, size_t bodycap)
{
	int tries = 0;
	for (;;) {
		int cseq = rtsp_send(t, method, uri, extra);
		if (cseq < 0)
			return cseq;
		int64_t deadline = now_us() + (int64_t)t->timeout_ms * 1000;
		int status;
		for (;;) {
			int r = conn_next_response(t->c, &t->resp);
			if (r < 0)
				return r;
			if (r == 1) {
				bool mine = t->resp.cseq == cseq;
				status = t->resp.status;
				if (mine && body) {
					size_t n = t->resp.body_len < bodycap ? t->resp.body_len : bodycap - 1;
					if (n)
						memcpy(body, t->resp.body, n);
					body[n] = 0;
				}
				conn_consume(t->c, t->resp.total_len);
				if (mine)
					break;
				continue;   /* a late keep-alive answer */
			}
			if (g_stop)
				return -EINTR;
			int64_t left = deadline - now_us();
			if (left <= 0)
				return -ETIMEDOUT;
			r = conn_fill(t->c, (int)(left / 1000) + 1);
			if (r < 0 && r != -EINTR)
				return r;
		}
		if (status != 401 || !t->auth.creds || tries >= 2)
			return status;
		int ar = auth_from_response(&t->auth, &t->resp);
		if (ar < 0)
			return status;
		/* A second 401 that is not about a stale nonce: wrong credentials. */
		if (tries && ar != 1)
			return status;
		tries++;
	}
}

static bool header_has_token(const char *v, const char *tok)
{
	size_t n = strlen(tok);
	for (const char *p = v; p && *p; ) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t l = strcspn(p, ", ");
		if (l == n && !strncasecmp(p, tok, n))
			return true;
		p += l;
	}
	return false;
}

/* Why a request got no answer, in words. */
static const char *xact_error(int e)
{
	return e == -ETIMEDOUT ? "no answer" : e == -EBADMSG ? "the answer is not RTSP" :
	       e == -ECONNRESET ? "the server closed the connection" : strerror(-e);
}

static const char *status_text(const struct talk *t)
{
	return t->resp.reason[0] ? t->resp.reason : rtsp_reason(t->resp.status);
}

/* ---------------------------------------------------------------- HTTP tunnel and WebSocket */

/* A new connection to the server, in TLS when the transport is. */
static int link_open(struct talk *t, struct link *l)
{
	l->fd = tcp_connect(t->tgt.host, t->tgt.port, NULL, NULL);
	if (l->fd < 0)
		return l->fd;
	if (!t->tls)
		return 0;
	int r = tls_handshake(t->tls, l, t->tgt.host, t->verify, t->timeout_ms);
	if (r < 0)
		link_close(l);
	return r;
}

/* Sends an HTTP request head on the connected t->c->rd and reads the
 * answer's head into t->resp. What follows the head stays in t->c->in.
 * Returns the HTTP status, or -errno after a message (the link is closed
 * then). */
static int http_exchange(struct talk *t, const char *req, size_t len, const char *what)
{
	struct conn *c = t->c;
	int r;
	if (t->verbose)
		dump("> ", req, len);
	r = link_write_all(&c->rd, req, len);
	c->inlen = 0;
	int64_t deadline = now_us() + (int64_t)t->timeout_ms * 1000;
	int hl = 0;
	while (r >= 0) {
		hl = rtsp_parse_response_head(c->in, c->inlen, &t->resp);
		if (hl != 0)
			break;
		int64_t left = deadline - now_us();
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		r = conn_fill(c, (int)(left / 1000) + 1);
		if (r == -EINTR)
			r = g_stop ? -EINTR : 0;
	}
	if (r < 0 || hl < 0) {
		msg("%s: no answer to GET %s: %s", what, t->tgt.path,
		    r == -ETIMEDOUT ? "no answer" : r < 0 ? strerror(-r) : "malformed answer");
		link_close(&c->rd);
		return r < 0 ? r : -EBADMSG;
	}
	if (t->verbose)
		dump("< ", c->in, (size_t)hl);
	conn_consume(c, (size_t)hl);
	return t->resp.status;
}

/* Connects t->c->rd, then http_exchange(). */
static int http_open(struct talk *t, const char *req, size_t len, const char *what)
{
	int r = link_open(t, &t->c->rd);
	if (r < 0)
		return r;
	return http_exchange(t, req, len, what);
}

/* GET then POST with the same x-sessioncookie (PROTOCOL-NOTES §3). The GET
 * must be answered 200 before the POST opens; the POST gets no answer. The
 * tunnel itself is not normally authenticated (ONVIF: RTSP inside is), but
 * a 401 on the GET is answered with the credentials once. Under TLS (the
 * HTTPS tunnel) both halves are TLS connections of their own. */
static int tunnel_open(struct talk *t)
{
	char cookie[33];
	random_hex(cookie, 16);
	struct auth hauth = t->auth;
	for (int attempt = 0; attempt < 2; attempt++) {
		char authz[2048];
		auth_header(&hauth, "GET", t->tgt.path, authz, sizeof(authz));
		char req[4096];
		int n = snprintf(req, sizeof(req),
				 "GET %s HTTP/1.0\r\nUser-Agent: " USER_AGENT "\r\nx-sessioncookie: %s\r\n"
				 "Accept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n%s\r\n",
				 t->tgt.path, cookie, authz);
		if (n < 0 || (size_t)n >= sizeof(req)) {
			msg("HTTP tunnel: the GET request is too long");
			return -ENOSPC;
		}
		int st = http_open(t, req, (size_t)n, t->tls ? "HTTPS tunnel" : "HTTP tunnel");
		if (st < 0)
			return st;
		if (st == 401 && t->auth.creds && attempt == 0 && auth_from_response(&hauth, &t->resp) >= 0) {
			link_close(&t->c->rd);
			continue;
		}
		if (st != 200) {
			msg("%s: GET %s answered %d %s", t->tls ? "HTTPS tunnel" : "HTTP tunnel", t->tgt.path, st,
			    t->resp.reason);
			link_close(&t->c->rd);
			return -ECONNREFUSED;
		}
		break;
	}
	int r = link_open(t, &t->c->post);
	if (r < 0)
		return r;
	char authz[2048];
	auth_header(&hauth, "POST", t->tgt.path, authz, sizeof(authz));
	char req[4096];
	/* Content-Length is a placeholder everybody sends; servers ignore it. */
	int n = snprintf(req, sizeof(req),
			 "POST %s HTTP/1.0\r\nUser-Agent: " USER_AGENT "\r\nx-sessioncookie: %s\r\n"
			 "Content-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n"
			 "Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n%s\r\n",
			 t->tgt.path, cookie, authz);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		msg("HTTP tunnel: the POST request is too long");
		return -ENOSPC;
	}
	if (t->verbose)
		dump("> ", req, (size_t)n);
	return link_write_all(&t->c->post, req, (size_t)n);
}

/* The headers of the server's 101 (in t->resp): Sec-WebSocket-Accept must
 * be accept, the hash of our key, and the subprotocol, if it names one,
 * ours. 0, or -EPROTO after a message. */
static int ws_check_answer(struct talk *t, const char *accept, const char *what)
{
	const char *acc = rtsp_response_header(&t->resp, "Sec-WebSocket-Accept");
	const char *proto = rtsp_response_header(&t->resp, "Sec-WebSocket-Protocol");
	if (!acc || strcmp(acc, accept)) {
		msg("%s: the server's Sec-WebSocket-Accept is %s, not %s", what, acc ? acc : "missing", accept);
		return -EPROTO;
	}
	if (proto && strcasecmp(proto, WS_PROTOCOL)) {
		msg("%s: the server chose the subprotocol %s, not " WS_PROTOCOL, what, proto);
		return -EPROTO;
	}
	if (!proto && t->verbose)
		msg("%s: the server did not confirm the " WS_PROTOCOL " subprotocol; going on", what);
	return 0;
}

/* After the 101: RTSP runs inside frames, and whatever came after the
 * 101's head is frames already. */
static void ws_start(struct conn *c)
{
	memcpy(c->ws_in, c->in, c->inlen);
	c->ws_inlen = c->inlen;
	c->inlen = 0;
	c->ws = true;
}

/* The WebSocket opening handshake (RFC 6455 §4.1; ONVIF Streaming: version
 * 13, subprotocol rtsp.onvif.org) on the URL's host and port, path
 * --ws-path. The answer must be 101 with the Sec-WebSocket-Accept of our
 * key, and must not pick another subprotocol. Like the tunnel's GET, a 401
 * is answered with the credentials once. Then RTSP runs inside frames. */
static int ws_open(struct talk *t)
{
	struct conn *c = t->c;
	uint8_t nonce[16];
	char key[32], accept[29];
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -EIO;
	b64_encode(nonce, sizeof(nonce), key);
	if (ws_accept_key(key, accept) < 0)
		return -EINVAL;
	char host[300];
	if (strchr(t->tgt.host, ':'))
		snprintf(host, sizeof(host), "[%s]:%d", t->tgt.host, t->tgt.port);
	else
		snprintf(host, sizeof(host), "%s:%d", t->tgt.host, t->tgt.port);
	const char *what = t->tls ? "wss" : "WebSocket";
	struct auth hauth = t->auth;
	for (int attempt = 0; attempt < 2; attempt++) {
		char authz[2048];
		auth_header(&hauth, "GET", t->ws_path, authz, sizeof(authz));
		char req[3000];
		int n = snprintf(req, sizeof(req),
				 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " WS_PROTOCOL
				 "\r\nUser-Agent: " USER_AGENT "\r\n%s\r\n", t->ws_path, host, key, authz);
		if (n < 0 || (size_t)n >= sizeof(req))
			return -ENOSPC;
		int st = http_open(t, req, (size_t)n, what);
		if (st < 0)
			return st;
		if (st == 401 && t->auth.creds && attempt == 0 && auth_from_response(&hauth, &t->resp) >= 0) {
			link_close(&c->rd);
			continue;
		}
		if (st != 101) {
			msg("%s: GET %s answered %d %s, not 101 Switching Protocols (is it the server's WebSocket "
			    "port? --ws-path sets the path)", what, t->ws_path, st, t->resp.reason);
			link_close(&c->rd);
			return -ECONNREFUSED;
		}
		if (ws_check_answer(t, accept, what) < 0) {
			link_close(&c->rd);
			return -EPROTO;
		}
		break;
	}
	ws_start(c);
	return 0;
}

/* ---------------------------------------------------------------- audio source and encoder */

struct rtp_item {
	uint64_t ts;           /* in RTP clock units since the start */
	bool marker;
	size_t len;
	uint8_t data[MAX_PAYLOAD];
};

struct source {
	/* input */
	const char *input;     /* file, or ALSA device when live */
	bool live, loop;
	AVFormatContext *fmt;
	AVCodecContext *dec;
	int stream;
	SwrContext *swr;
	AVAudioFifo *fifo;
	AVFrame *in_frame, *cv_frame, *enc_frame;
	AVPacket *pkt;
	bool in_eof, swr_flushed, enc_flushed, done;
	/* encoder */
	enum codec_id codec;
	AVCodecContext *enc;
	int frame_size;
	int64_t next_pts;
	int64_t first_pts;
	bool have_first_pts;
	/* packetizer */
	int clock;             /* RTP clock rate */
	size_t bytes_per_packet;   /* byte-stream codecs (G.711, G.722, G.726): 20 ms */
	uint32_t ts_per_packet;
	uint8_t bytes[8192];
	size_t nbytes;
	uint64_t byte_ts;
	int aac_sizelength, aac_indexlength;
	bool first_packet;
	struct rtp_item *q;
	int qhead, qlen;
};

static struct rtp_item *q_push(struct source *s)
{
	if (s->qlen == QUEUE_LEN)
		return NULL;
	struct rtp_item *it = &s->q[(s->qhead + s->qlen) % QUEUE_LEN];
	s->qlen++;
	it->marker = false;
	it->len = 0;
	return it;
}

/* Lets a signal abort a blocking read (an ALSA capture waits for its
 * period). */
static int interrupted(void *arg)
{
	(void)arg;
	return g_stop != 0;
}

static int input_open(struct source *s, int rate, int channels)
{
	const AVInputFormat *ifmt = NULL;
	AVDictionary *opts = NULL;
	char eb[128];
	if (s->live) {
		ifmt = av_find_input_format("alsa");
		if (!ifmt) {
			msg("this FFmpeg has no ALSA input device");
			return -ENOSYS;
		}
		/* Capture at the codec's rate and channel count when the device
		 * can: less to resample. */
		av_dict_set_int(&opts, "sample_rate", rate, 0);
		av_dict_set_int(&opts, "channels", channels, 0);
	}
	s->fmt = avformat_alloc_context();
	if (!s->fmt) {
		av_dict_free(&opts);
		return -ENOMEM;
	}
	s->fmt->interrupt_callback.callback = interrupted;
	int r = avformat_open_input(&s->fmt, s->input, ifmt, &opts);
	av_dict_free(&opts);
	if (r < 0) {
		msg("cannot open %s %s: %s", s->live ? "ALSA device" : "input", s->input, av_err(r, eb, sizeof(eb)));
		return -ENOENT;
	}
	r = avformat_find_stream_info(s->fmt, NULL);
	if (r < 0) {
		msg("%s: %s", s->input, av_err(r, eb, sizeof(eb)));
		return -EINVAL;
	}
	const AVCodec *dc = NULL;
	s->stream = av_find_best_stream(s->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &dc, 0);
	if (s->stream < 0 || !dc) {
		msg("%s has no audio stream that FFmpeg can decode", s->input);
		return -EINVAL;
	}
	if (!s->dec) {
		s->dec = avcodec_alloc_context3(dc);
		if (!s->dec)
			return -ENOMEM;
	} else {
		avcodec_free_context(&s->dec);
		s->dec = avcodec_alloc_context3(dc);
		if (!s->dec)
			return -ENOMEM;
	}
	avcodec_parameters_to_context(s->dec, s->fmt->streams[s->stream]->codecpar);
	r = avcodec_open2(s->dec, dc, NULL);
	if (r < 0) {
		msg("cannot open the %s decoder: %s", dc->name, av_err(r, eb, sizeof(eb)));
		return -EINVAL;
	}
	return 0;
}

struct codec_params {
	enum codec_id id;
	int g726_bits;
	bool g726_aal2;
	int clock, rate, channels;
	int aac_sizelength, aac_indexlength;
	uint8_t aac_config[16];
	int aac_config_len;
};

static int encoder_open(struct source *s, const struct codec_params *cp)
{
	const char *name = NULL;
	enum AVSampleFormat want = AV_SAMPLE_FMT_S16;
	switch (cp->id) {
	case C_PCMU: name = "pcm_mulaw"; break;
	case C_PCMA: name = "pcm_alaw"; break;
	case C_G722: name = "g722"; break;
	/* g726le packs the first codeword into the low bits of the first octet,
	 * as RFC 3551 §4.5.4 wants; "g726" is the MSB-first AAL2 packing. */
	case C_G726: name = cp->g726_aal2 ? "g726" : "g726le"; break;
	case C_AAC: name = "aac"; want = AV_SAMPLE_FMT_FLTP; break;
	case C_OPUS: name = "libopus"; break;
	case C_NONE: return -EINVAL;
	}
	const AVCodec *ec = avcodec_find_encoder_by_name(name);
	if (!ec && cp->id == C_OPUS)
		ec = avcodec_find_encoder_by_name("opus");
	if (!ec) {
		msg("this FFmpeg has no %s encoder", name);
		return -ENOSYS;
	}
	AVCodecContext *e = avcodec_alloc_context3(ec);
	if (!e)
		return -ENOMEM;
	s->enc = e;
	e->sample_rate = cp->rate;
	av_channel_layout_default(&e->ch_layout, cp->channels);
	e->sample_fmt = ec->sample_fmts ? ec->sample_fmts[0] : want;
	if (ec->sample_fmts)
		for (const enum AVSampleFormat *f = ec->sample_fmts; *f != AV_SAMPLE_FMT_NONE; f++)
			if (*f == want)
				e->sample_fmt = want;
	e->time_base = (AVRational){ 1, cp->rate };
	if (cp->id == C_G726)
		e->bit_rate = cp->g726_bits * 8000;
	if (cp->id == C_AAC) {
		e->bit_rate = 32000 * cp->channels * (cp->rate > 24000 ? 2 : 1);
		e->profile = FF_PROFILE_AAC_LOW;
	}
	if (cp->id == C_OPUS) {
		e->bit_rate = 32000 * cp->channels;
		e->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;   /* only for the native fallback */
	}
	char eb[128];
	int r = avcodec_open2(e, ec, NULL);
	if (r < 0) {
		msg("cannot open the %s encoder (%d Hz, %d ch): %s", ec->name, cp->rate, cp->channels,
		    av_err(r, eb, sizeof(eb)));
		return -EINVAL;
	}
	if (cp->id == C_AAC && cp->aac_config_len && e->extradata_size &&
	    (e->extradata_size < 2 || cp->aac_config_len < 2 || memcmp(e->extradata, cp->aac_config, 2)))
		msg("warning: the server's AAC config differs from the encoder's (%02x%02x vs %02x%02x)",
		    cp->aac_config[0], cp->aac_config[1], e->extradata[0], e->extradata_size > 1 ? e->extradata[1] : 0);
	s->frame_size = e->frame_size;
	if (!s->frame_size || (ec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE))
		s->frame_size = cp->rate / 50;
	s->codec = cp->id;
	s->clock = cp->clock;
	s->aac_sizelength = cp->aac_sizelength;
	s->aac_indexlength = cp->aac_indexlength;
	switch (cp->id) {
	case C_PCMU:
	case C_PCMA:
		s->bytes_per_packet = 160;
		break;
	case C_G722:
		s->bytes_per_packet = 160;   /* 320 samples at 16 kHz, 4 bits each */
		break;
	case C_G726:
		s->bytes_per_packet = (size_t)(20 * cp->g726_bits);   /* 160 codewords of N bits */
		break;
	default:
		s->bytes_per_packet = 0;
	}
	s->ts_per_packet = 160;   /* 20 ms at the 8 kHz clock of all byte-stream codecs */
	s->first_packet = true;
	return 0;
}

/* Byte-stream codecs: cut the encoder's output into 20 ms packets. A final
 * short packet (flush) gets a timestamp step in proportion. */
static int packetize_bytes(struct source *s, const uint8_t *data, size_t len, bool flush)
{
	while (len || (flush && s->nbytes)) {
		size_t take = sizeof(s->bytes) - s->nbytes < len ? sizeof(s->bytes) - s->nbytes : len;
		memcpy(s->bytes + s->nbytes, data, take);
		s->nbytes += take;
		data += take;
		len -= take;
		size_t off = 0;
		while (s->nbytes - off >= s->bytes_per_packet || (flush && !len && s->nbytes > off)) {
			size_t n = s->nbytes - off < s->bytes_per_packet ? s->nbytes - off : s->bytes_per_packet;
			struct rtp_item *it = q_push(s);
			if (!it)
				return -ENOBUFS;
			memcpy(it->data, s->bytes + off, n);
			it->len = n;
			it->ts = s->byte_ts;
			/* RFC 3551 §4.1: marker on the first packet of a talkspurt */
			it->marker = s->first_packet;
			s->first_packet = false;
			s->byte_ts += (uint64_t)s->ts_per_packet * n / s->bytes_per_packet;
			off += n;
		}
		memmove(s->bytes, s->bytes + off, s->nbytes - off);
		s->nbytes -= off;
		if (!len)
			break;
	}
	return 0;
}

/* RFC 3640 AAC-hbr (or -lbr, per sizelength/indexlength): AU-headers-length
 * in bits, one AU-header (size, index 0), the raw AU. An AU too big for one
 * packet is fragmented; each fragment's AU-size is the whole AU's, and the
 * marker goes on the last (RFC 3640 §3.2.3). */
static int packetize_aac(struct source *s, const AVPacket *p, uint64_t ts)
{
	int hbits = s->aac_sizelength + s->aac_indexlength;
	size_t hbytes = (size_t)(hbits + 7) / 8;
	size_t room = MAX_PAYLOAD - 2 - hbytes;
	if ((size_t)p->size >= (1u << s->aac_sizelength))
		return -EMSGSIZE;
	for (size_t off = 0; off < (size_t)p->size; ) {
		size_t n = (size_t)p->size - off < room ? (size_t)p->size - off : room;
		struct rtp_item *it = q_push(s);
		if (!it)
			return -ENOBUFS;
		it->data[0] = (uint8_t)(hbits >> 8);
		it->data[1] = (uint8_t)hbits;
		uint32_t h = (uint32_t)p->size << s->aac_indexlength;   /* index 0 */
		h <<= hbytes * 8 - (size_t)hbits;
		for (size_t i = 0; i < hbytes; i++)
			it->data[2 + i] = (uint8_t)(h >> (8 * (hbytes - 1 - i)));
		memcpy(it->data + 2 + hbytes, p->data + off, n);
		it->len = 2 + hbytes + n;
		it->ts = ts;
		off += n;
		it->marker = off == (size_t)p->size;
	}
	return 0;
}

static int on_encoded(struct source *s, const AVPacket *p)
{
	if (s->bytes_per_packet)
		return packetize_bytes(s, p->data, (size_t)p->size, false);
	if (!s->have_first_pts) {
		s->first_pts = p->pts;
		s->have_first_pts = true;
	}
	uint64_t ts = (uint64_t)av_rescale(p->pts - s->first_pts, s->clock, s->enc->sample_rate);
	if (s->codec == C_AAC)
		return packetize_aac(s, p, ts);
	/* Opus (RFC 7587): one packet per RTP packet. */
	if ((size_t)p->size > MAX_PAYLOAD)
		return -EMSGSIZE;
	struct rtp_item *it = q_push(s);
	if (!it)
		return -ENOBUFS;
	memcpy(it->data, p->data, (size_t)p->size);
	it->len = (size_t)p->size;
	it->ts = ts;
	it->marker = s->first_packet;
	s->first_packet = false;
	return 0;
}

static int drain_encoder(struct source *s)
{
	for (;;) {
		int r = avcodec_receive_packet(s->enc, s->pkt);
		if (r == AVERROR(EAGAIN))
			return 0;
		if (r == AVERROR_EOF) {
			s->enc_flushed = true;
			if (s->bytes_per_packet)
				packetize_bytes(s, NULL, 0, true);
			return 0;
		}
		if (r < 0)
			return r;
		r = on_encoded(s, s->pkt);
		av_packet_unref(s->pkt);
		if (r < 0)
			return r;
	}
}

/* Encodes one frame from the FIFO (a short last one padded with silence
 * when the encoder wants whole frames), or flushes when fifo is empty and
 * final. */
static int encode_from_fifo(struct source *s, bool final)
{
	int avail = av_audio_fifo_size(s->fifo);
	if (!avail && final)
		return avcodec_send_frame(s->enc, NULL);
	int n = avail < s->frame_size ? avail : s->frame_size;
	AVFrame *f = s->enc_frame;
	av_frame_unref(f);
	f->format = s->enc->sample_fmt;
	f->sample_rate = s->enc->sample_rate;
	av_channel_layout_copy(&f->ch_layout, &s->enc->ch_layout);
	bool pad = n < s->frame_size && s->enc->frame_size &&
		   !(s->enc->codec->capabilities & (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE));
	f->nb_samples = pad ? s->frame_size : n;
	int r = av_frame_get_buffer(f, 0);
	if (r < 0)
		return r;
	if (pad)
		av_samples_set_silence(f->data, 0, f->nb_samples, f->ch_layout.nb_channels, s->enc->sample_fmt);
	if (av_audio_fifo_read(s->fifo, (void **)f->data, n) < n)
		return AVERROR(EIO);
	f->pts = s->next_pts;
	s->next_pts += f->nb_samples;
	return avcodec_send_frame(s->enc, f);
}

/* Converts a decoded frame (or flushes the resampler with NULL) into the
 * FIFO at the encoder's format. The resampler is made from the first frame. */
static int convert(struct source *s, const AVFrame *in)
{
	if (!s->swr) {
		AVChannelLayout inl;
		if (in->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
			av_channel_layout_default(&inl, in->ch_layout.nb_channels);
		else
			av_channel_layout_copy(&inl, &in->ch_layout);
		int r = swr_alloc_set_opts2(&s->swr, &s->enc->ch_layout, s->enc->sample_fmt, s->enc->sample_rate,
					    &inl, in->format, in->sample_rate, 0, NULL);
		av_channel_layout_uninit(&inl);
		if (r < 0 || (r = swr_init(s->swr)) < 0)
			return r;
	}
	int in_n = in ? in->nb_samples : 0;
	int out_n = swr_get_out_samples(s->swr, in_n);
	if (out_n <= 0)
		return 0;
	AVFrame *o = s->cv_frame;
	av_frame_unref(o);
	o->format = s->enc->sample_fmt;
	o->sample_rate = s->enc->sample_rate;
	av_channel_layout_copy(&o->ch_layout, &s->enc->ch_layout);
	o->nb_samples = out_n;
	int r = av_frame_get_buffer(o, 0);
	if (r < 0)
		return r;
	int got = swr_convert(s->swr, o->data, out_n, in ? (const uint8_t **)in->extended_data : NULL, in_n);
	if (got < 0)
		return got;
	if (got && av_audio_fifo_write(s->fifo, (void **)o->data, got) < got)
		return AVERROR(ENOMEM);
	return 0;
}

static int decode_some(struct source *s)
{
	int r = av_read_frame(s->fmt, s->pkt);
	if (r == AVERROR(EAGAIN))
		return 0;
	if (r < 0) {
		/* End of the file (or a capture error): flush the decoder. */
		if (s->loop && !s->live && r == AVERROR_EOF) {
			/* Reopen rather than seek: works for any input. The resampler,
			 * FIFO and encoder carry on, so timestamps stay continuous. */
			avformat_close_input(&s->fmt);
			int e = input_open(s, s->enc->sample_rate, s->enc->ch_layout.nb_channels);
			return e < 0 ? AVERROR(EIO) : 0;
		}
		if (r != AVERROR_EOF && !g_stop) {
			char eb[128];
			msg("reading %s: %s", s->input, av_err(r, eb, sizeof(eb)));
		}
		avcodec_send_packet(s->dec, NULL);
		s->in_eof = true;
	} else {
		if (s->pkt->stream_index != s->stream) {
			av_packet_unref(s->pkt);
			return 0;
		}
		r = avcodec_send_packet(s->dec, s->pkt);
		av_packet_unref(s->pkt);
		if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_INVALIDDATA)
			return r;
	}
	for (;;) {
		r = avcodec_receive_frame(s->dec, s->in_frame);
		if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
			return 0;
		if (r == AVERROR_INVALIDDATA)
			continue;
		if (r < 0)
			return r;
		r = convert(s, s->in_frame);
		av_frame_unref(s->in_frame);
		if (r < 0)
			return r;
	}
}

/* Makes at least one RTP payload ready, unless the input is over and
 * everything was sent (s->done). 0 or a negative AVERROR. */
static int source_fill(struct source *s)
{
	while (!s->qlen && !s->done) {
		if (g_stop)
			return AVERROR_EXIT;
		int r = drain_encoder(s);
		if (r < 0)
			return r;
		if (s->qlen)
			break;
		if (s->enc_flushed) {
			s->done = true;
			break;
		}
		if (av_audio_fifo_size(s->fifo) >= s->frame_size) {
			r = encode_from_fifo(s, false);
		} else if (s->in_eof) {
			if (!s->swr_flushed) {
				if (s->swr)
					r = convert(s, NULL);
				s->swr_flushed = true;
				continue;
			}
			r = encode_from_fifo(s, true);
		} else {
			r = decode_some(s);
		}
		if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_EOF)
			return r;
	}
	return 0;
}

static void source_close(struct source *s)
{
	avformat_close_input(&s->fmt);
	avcodec_free_context(&s->dec);
	avcodec_free_context(&s->enc);
	swr_free(&s->swr);
	if (s->fifo)
		av_audio_fifo_free(s->fifo);
	av_frame_free(&s->in_frame);
	av_frame_free(&s->cv_frame);
	av_frame_free(&s->enc_frame);
	av_packet_free(&s->pkt);
	free(s->q);
}

static int source_open(struct source *s, const struct codec_params *cp)
{
	s->q = calloc(QUEUE_LEN, sizeof(*s->q));
	s->in_frame = av_frame_alloc();
	s->cv_frame = av_frame_alloc();
	s->enc_frame = av_frame_alloc();
	s->pkt = av_packet_alloc();
	if (!s->q || !s->in_frame || !s->cv_frame || !s->enc_frame || !s->pkt)
		return -ENOMEM;
	int r = encoder_open(s, cp);
	if (r < 0)
		return r;
	s->fifo = av_audio_fifo_alloc(s->enc->sample_fmt, s->enc->ch_layout.nb_channels, s->frame_size * 4);
	if (!s->fifo)
		return -ENOMEM;
	return input_open(s, cp->rate, cp->channels);
}

/* ---------------------------------------------------------------- RTP out */

struct rtp_out {
	enum xport xport;
	int rtp_fd, rtcp_fd;   /* UDP */
	int channel;           /* interleaved RTP channel; RTCP on channel + 1 */
	struct conn *c;
	srtp_t srtp;           /* protects RTP and RTCP when the section is RTP/SAVP; NULL otherwise */
	uint8_t pt;
	uint16_t seq;
	uint32_t ssrc, ts_base;
	uint32_t packets, octets;
	int clock;
	uint64_t last_ts;
	int64_t last_send_us;
	bool refused_told;
};

static int rtp_write(struct rtp_out *o, bool rtcp, const uint8_t *pkt, size_t len)
{
	if (o->xport == XP_UDP) {
		ssize_t n = send(rtcp ? o->rtcp_fd : o->rtp_fd, pkt, len, 0);
		if (n < 0 && errno == ECONNREFUSED) {
			/* An ICMP port unreachable from an earlier packet: the server
			 * has not opened its port yet or closed it. Not fatal. */
			if (!o->refused_told && o->c->verbose)
				msg("the server refused a UDP packet (ICMP port unreachable)");
			o->refused_told = true;
			return 0;
		}
		return n < 0 ? -errno : 0;
	}
	uint8_t frame[4 + 12 + MAX_PAYLOAD + SRTP_MAX_TRAILER_LEN];
	if (len + 4 > sizeof(frame))
		return -EMSGSIZE;
	frame[0] = '$';
	frame[1] = (uint8_t)(o->channel + (rtcp ? 1 : 0));
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
	memcpy(frame + 4, pkt, len);
	return conn_send(o->c, frame, len + 4);
}

static int rtp_send(struct rtp_out *o, const struct rtp_item *it)
{
	/* libsrtp works in place and appends its tag: room for it, aligned
	 * as it wants (PROTOCOL-NOTES §7). */
	uint8_t pkt[12 + MAX_PAYLOAD + SRTP_MAX_TRAILER_LEN] __attribute__((aligned(8)));
	uint32_t ts = o->ts_base + (uint32_t)it->ts;
	pkt[0] = 0x80;
	pkt[1] = (uint8_t)((it->marker ? 0x80 : 0) | o->pt);
	pkt[2] = (uint8_t)(o->seq >> 8);
	pkt[3] = (uint8_t)o->seq;
	pkt[4] = (uint8_t)(ts >> 24);
	pkt[5] = (uint8_t)(ts >> 16);
	pkt[6] = (uint8_t)(ts >> 8);
	pkt[7] = (uint8_t)ts;
	pkt[8] = (uint8_t)(o->ssrc >> 24);
	pkt[9] = (uint8_t)(o->ssrc >> 16);
	pkt[10] = (uint8_t)(o->ssrc >> 8);
	pkt[11] = (uint8_t)o->ssrc;
	memcpy(pkt + 12, it->data, it->len);
	int len = (int)(12 + it->len);
	if (o->srtp) {
		srtp_err_status_t e = srtp_protect(o->srtp, pkt, &len);
		if (e != srtp_err_status_ok) {
			/* Never sent in the clear: the server would drop it anyway. */
			msg("SRTP: cannot protect an RTP packet (libsrtp error %d)", (int)e);
			return -EIO;
		}
	}
	int r = rtp_write(o, false, pkt, (size_t)len);
	if (r < 0)
		return r;
	o->seq++;
	o->packets++;
	o->octets += (uint32_t)it->len;
	o->last_ts = it->ts;
	o->last_send_us = now_us();
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* SR + SDES CNAME (RFC 3550 §6.4.1, §6.5.1): the server learns our SSRC
 * and NTP/RTP mapping, and (ONVIF) RTCP counts as liveness. The SR's RTP
 * time is derived from the wall clock through the last packet's. */
static int rtcp_send_sr(struct rtp_out *o)
{
	if (!o->packets)
		return 0;
	uint8_t p[80 + SRTP_MAX_TRAILER_LEN + 4] __attribute__((aligned(8)));   /* + SRTCP's E|index and tag */
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	uint64_t ntp_sec = (uint64_t)rt.tv_sec + 2208988800u;
	uint32_t ntp_frac = (uint32_t)(((uint64_t)rt.tv_nsec << 32) / 1000000000u);
	int64_t since = now_us() - o->last_send_us;
	uint32_t rtpts = o->ts_base + (uint32_t)o->last_ts + (uint32_t)(since * o->clock / 1000000);
	p[0] = 0x80;
	p[1] = 200;
	p[2] = 0;
	p[3] = 6;
	put32(p + 4, o->ssrc);
	put32(p + 8, (uint32_t)ntp_sec);
	put32(p + 12, ntp_frac);
	put32(p + 16, rtpts);
	put32(p + 20, o->packets);
	put32(p + 24, o->octets);
	char host[64] = "rtsp-talk";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	size_t cn = strlen(host);
	if (cn > 40)
		cn = 40;
	size_t sdes = 4 + 4 + 2 + cn + 1;
	size_t padded = (sdes + 3) & ~(size_t)3;
	uint8_t *s = p + 28;
	memset(s, 0, padded);
	s[0] = 0x81;
	s[1] = 202;
	s[2] = 0;
	s[3] = (uint8_t)(padded / 4 - 1);
	put32(s + 4, o->ssrc);
	s[8] = 1;
	s[9] = (uint8_t)cn;
	memcpy(s + 10, host, cn);
	int len = (int)(28 + padded);
	if (o->srtp && srtp_protect_rtcp(o->srtp, p, &len) != srtp_err_status_ok)
		return -EIO;
	return rtp_write(o, true, p, (size_t)len);
}

/* ---------------------------------------------------------------- SRTP keys (SDES) */

/* An SDES key (RFC 4568) for the back channel. The server gives it in the
 * DESCRIBE answer's back-channel section and decrypts what we send with it
 * (rtspd: worker/backchannel.c); the talker sends no key of its own. */
struct sdes {
	bool tag32;            /* AES_CM_128_HMAC_SHA1_32: a 4-byte SRTP tag instead of 10 */
	char suite[32];
	uint8_t key[30];       /* master key 16 + master salt 14 */
};

/* Says why an a=crypto is refused, never with its key. */
__attribute__((format(printf, 3, 4)))
static void why_set(char *why, size_t cap, const char *fmt, ...)
{
	char raw[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	redact_into(why, cap, raw);
}

/* One a=crypto value: "<tag> <suite> inline:<base64(key||salt)>[|lifetime]
 * [|MKI:length][;more keys] [session parameters]". 0, -ENOTSUP (something
 * rtsp-talk does not do; why says what) or -EBADMSG (malformed). */
static int sdes_parse(const char *v, struct sdes *out, char *why, size_t cap)
{
	char buf[256];
	set_str(buf, sizeof(buf), v);
	char *save = NULL, *e;
	char *tag = strtok_r(buf, " \t", &save);
	char *suite = strtok_r(NULL, " \t", &save);
	char *kp = strtok_r(NULL, " \t", &save);
	if (!tag || !suite || !kp || strtol(tag, &e, 10) < 0 || *e) {
		why_set(why, cap, "a malformed a=crypto:%s", v);
		return -EBADMSG;
	}
	memset(out, 0, sizeof(*out));
	if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32"))
		out->tag32 = true;
	else if (strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) {
		why_set(why, cap, "the crypto suite %s", suite);
		return -ENOTSUP;
	}
	set_str(out->suite, sizeof(out->suite), suite);
	if (strncasecmp(kp, "inline:", 7)) {
		why_set(why, cap, "the key method of %.60s (only inline: keys)", kp);
		return -ENOTSUP;
	}
	kp += 7;
	/* Several keys need an MKI (or From-To ranges) to tell them apart in
	 * the packets: the first one alone, with the checks below, is it. */
	kp[strcspn(kp, ";")] = 0;
	char *bar = strchr(kp, '|');
	if (bar) {
		*bar = 0;
		for (char *f = bar + 1; *f; ) {
			size_t n = strcspn(f, "|");
			if (memchr(f, ':', n)) {
				/* MKI:length: every packet would carry the key's index */
				why_set(why, cap, "a key with an MKI (%.*s)", (int)n, f);
				return -ENOTSUP;
			}
			f += n + (f[n] == '|');   /* a lifetime ("2^31"): only a limit we never reach */
		}
	}
	size_t klen = strlen(kp), used = 0;
	int status = 0;
	uint8_t k[64];
	struct b64_stream st;
	memset(&st, 0, sizeof(st));
	size_t n = klen > 60 ? 0 : b64_stream_decode(&st, (const uint8_t *)kp, klen, k, sizeof(k), &used, &status);
	if (n != sizeof(out->key) || used != klen || status || st.n) {
		why_set(why, cap, "a key that is not 30 bytes of base64 (%s)", suite);
		explicit_bzero(k, sizeof(k));
		return -EBADMSG;
	}
	memcpy(out->key, k, sizeof(out->key));
	explicit_bzero(k, sizeof(k));
	/* Session parameters change the transform (KDR, unencrypted or
	 * unauthenticated SRTP, FEC keys): libsrtp with the defaults would
	 * then produce what the server does not expect. Only the harmless
	 * ones pass. */
	for (char *sp; (sp = strtok_r(NULL, " \t", &save)); ) {
		if (!strncmp(sp, "WSH=", 4) || !strncmp(sp, "FEC_ORDER=", 10) || !strcmp(sp, "KDR=0"))
			continue;
		why_set(why, cap, "the session parameter %.60s", sp);
		explicit_bzero(out->key, sizeof(out->key));
		return -ENOTSUP;
	}
	return 0;
}

/* The back-channel section is RTP/SAVP: its first a=crypto we can use.
 * rtspd offers one; with SDES in a DESCRIBE answer there is no offer/answer
 * to tell the server which of several we took, so the first usable one it
 * is. 0, or -ENOTSUP after a message. */
static int sdes_from_sdp(const struct sdp_media *m, struct sdes *k)
{
	if (!m->ncrypto) {
		msg("the back channel is %s but its SDP gives no SDES key (a=crypto)%s: rtsp-talk cannot encrypt "
		    "the audio", m->proto, m->key_mgmt ? "; it uses MIKEY key management (a=key-mgmt), which rtsp-talk "
		    "does not do" : "");
		return -ENOTSUP;
	}
	char whys[600] = "";
	for (int i = 0; i < m->ncrypto; i++) {
		char why[160];
		if (!sdes_parse(m->crypto[i], k, why, sizeof(why)))
			return 0;
		size_t wl = strlen(whys);
		snprintf(whys + wl, sizeof(whys) - wl, "%s%s", wl ? ", " : "", why);
	}
	msg("the back channel asks for SRTP with %s; rtsp-talk does AES_CM_128_HMAC_SHA1_80 and "
	    "AES_CM_128_HMAC_SHA1_32 with one inline key, no MKI", whys);
	return -ENOTSUP;
}

/* The sending context: our RTP and RTCP under the server's key. */
static int srtp_start(struct rtp_out *o, const struct sdes *k)
{
	static bool inited;
	if (!inited) {
		if (srtp_init() != srtp_err_status_ok)
			return -EIO;
		inited = true;
	}
	srtp_policy_t p;
	memset(&p, 0, sizeof(p));
	if (k->tag32)
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
	else
		srtp_crypto_policy_set_rtp_default(&p.rtp);   /* AES_CM_128_HMAC_SHA1_80 */
	/* The _32 suite shortens the SRTP tag only; SRTCP keeps 80 bits
	 * (libsrtp's documentation of the _32 policy says the same). */
	srtp_crypto_policy_set_rtcp_default(&p.rtcp);
	p.ssrc.type = ssrc_any_outbound;
	uint8_t key[sizeof(k->key)];
	memcpy(key, k->key, sizeof(key));   /* libsrtp wants a non-const key */
	p.key = key;
	p.next = NULL;
	srtp_err_status_t e = srtp_create(&o->srtp, &p);
	explicit_bzero(key, sizeof(key));
	if (e != srtp_err_status_ok) {
		o->srtp = NULL;
		msg("SRTP: libsrtp refused the key (error %d)", (int)e);
		return -EIO;
	}
	return 0;
}

/* ---------------------------------------------------------------- UDP ports */

/* An even RTP port and the odd one after it (RFC 3551 §11), on the RTSP
 * connection's address family. */
static int udp_pair(int family, int *rtp_fd, int *rtcp_fd, int *port)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		int a = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (a < 0)
			return -errno;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)family;
		socklen_t sl = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
		if (bind(a, (struct sockaddr *)&ss, sl) < 0 || getsockname(a, (struct sockaddr *)&ss, &sl) < 0) {
			close(a);
			return -errno;
		}
		int p = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
		if (p & 1 || p >= 65535) {
			close(a);
			continue;
		}
		int b = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (b < 0) {
			close(a);
			return -errno;
		}
		if (family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)(p + 1));
		else
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)(p + 1));
		if (bind(b, (struct sockaddr *)&ss, sl) < 0) {
			close(a);
			close(b);
			continue;
		}
		*rtp_fd = a;
		*rtcp_fd = b;
		*port = p;
		return 0;
	}
	return -EADDRINUSE;
}

static int udp_connect(int fd, const struct sockaddr_storage *peer, socklen_t plen, int port)
{
	struct sockaddr_storage a;
	memcpy(&a, peer, plen);
	if (a.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
	return connect(fd, (struct sockaddr *)&a, plen) < 0 ? -errno : 0;
}

static void drain_udp(int fd)
{
	uint8_t b[2048];
	while (fd >= 0 && recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

/* ---------------------------------------------------------------- options */

struct opts {
	const char *url;
	const char *userpass;
	const char *input;
	const char *device;
	const char *codec;
	enum xport xport;
	bool xport_given;
	bool xport_tls;        /* -t https or wss */
	bool insecure;         /* -k */
	const char *ca_file;
	const char *ws_path;
	bool verbose;
	bool loop;
	bool g726_aal2;
	double duration;
	int timeout_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtsp-talk [options] rtsp[s]://[user:pass@]camera[:port]/stream (-i FILE | -d ALSA_DEVICE)\n"
		"\n"
		"Sends audio to an ONVIF back channel (Require: " BC_REQUIRE ").\n"
		"\n"
		"  -i, --input FILE        an audio (or video) file FFmpeg can read\n"
		"  -d, --device DEV        capture live from an ALSA device (e.g. default, hw:1)\n"
		"  -u, --user USER:PASS    credentials (Basic or Digest MD5/SHA-256); also from the URL\n"
		"  -t, --transport T       udp (default; tcp for rtsps://), tcp (interleaved), http (QuickTime\n"
		"                          tunnel, as rtsph://), https (the tunnel in TLS, as rtspsh://),\n"
		"                          ws (WebSocket), wss (WebSocket in TLS); rtsps:// = RTSP in TLS\n"
		"  -k, --insecure          do not verify the server's TLS certificate\n"
		"      --ca-file FILE      trust the CA certificates in FILE instead of the system's\n"
		"      --ws-path PATH      the WebSocket's path (default /websocket)\n"
		"  -c, --codec C           pcmu, pcma, g722, g726 (g726-16/24/32/40), aac, opus;\n"
		"                          default: PCMU if offered, else the server's first we can send\n"
		"  -l, --loop              repeat the file until interrupted\n"
		"  -D, --duration SEC      stop after SEC seconds of audio\n"
		"  -T, --timeout SEC       wait at most SEC for each RTSP answer (default 10)\n"
		"      --g726-aal2         pack G726-N codewords MSB first (I.366.2 / AAL2), for\n"
		"                          servers that decode G726-N that way instead of RFC 3551\n"
		"  -v, --verbose           print the RTSP requests and responses\n"
		"  -h, --help              this text\n"
		"\n"
		"Exit status: 0 done, 1 error, 2 usage, 3 no back channel on the server,\n"
		"4 no codec in common.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "device", required_argument, NULL, 'd' },
		{ "user", required_argument, NULL, 'u' },
		{ "transport", required_argument, NULL, 't' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "ws-path", required_argument, NULL, 'W' },
		{ "codec", required_argument, NULL, 'c' },
		{ "loop", no_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "g726-aal2", no_argument, NULL, 'A' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	memset(o, 0, sizeof(*o));
	o->timeout_s = 10;
	o->ws_path = "/websocket";
	int ch;
	char *e;
	while ((ch = getopt_long(argc, argv, "i:d:u:t:kc:lD:T:vh", lo, NULL)) != -1) {
		switch (ch) {
		case 'i': o->input = optarg; break;
		case 'd': o->device = optarg; break;
		case 'u': o->userpass = optarg; break;
		case 'c': o->codec = optarg; break;
		case 'l': o->loop = true; break;
		case 'A': o->g726_aal2 = true; break;
		case 'v': o->verbose = true; break;
		case 'k': o->insecure = true; break;
		case 'C': o->ca_file = optarg; break;
		case 'W':
			if (optarg[0] != '/' || strpbrk(optarg, " \r\n")) {
				msg("the WebSocket path must start with '/' (e.g. /websocket)");
				return -EINVAL;
			}
			o->ws_path = optarg;
			break;
		case 't':
			o->xport_given = true;
			o->xport_tls = !strcasecmp(optarg, "https") || !strcasecmp(optarg, "wss");
			if (!strcasecmp(optarg, "udp"))
				o->xport = XP_UDP;
			else if (!strcasecmp(optarg, "tcp"))
				o->xport = XP_TCP;
			else if (!strcasecmp(optarg, "http") || !strcasecmp(optarg, "https"))
				o->xport = XP_HTTP;
			else if (!strcasecmp(optarg, "ws") || !strcasecmp(optarg, "wss"))
				o->xport = XP_WS;
			else {
				msg("unknown transport '%s' (udp, tcp, http, https, ws or wss)", optarg);
				return -EINVAL;
			}
			break;
		case 'D':
			o->duration = strtod(optarg, &e);
			if (*e || o->duration <= 0) {
				msg("bad duration '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'T':
			o->timeout_s = (int)strtol(optarg, &e, 10);
			if (*e || o->timeout_s <= 0 || o->timeout_s > 3600) {
				msg("bad timeout '%s'", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		msg(optind >= argc ? "no URL given" : "more than one URL given");
		return -EINVAL;
	}
	o->url = argv[optind];
	if (!o->input == !o->device) {
		msg("give exactly one of -i FILE and -d ALSA_DEVICE");
		return -EINVAL;
	}
	if (o->codec) {
		enum codec_id id;
		int bits;
		if (codec_from_cli(o->codec, &id, &bits) < 0) {
			msg("unknown codec '%s' (pcmu, pcma, g722, g726[-16|-24|-32|-40], aac, opus)", o->codec);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- choosing the back channel */

struct choice {
	struct sdp_media *m;
	struct sdp_fmt *f;
	struct codec_params cp;
};

static int aac_params(const struct sdp_fmt *f, struct codec_params *cp)
{
	static const int rates[] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
				     16000, 12000, 11025, 8000, 7350 };
	char v[64];
	cp->aac_sizelength = fmtp_get(f->fmtp, "sizelength", v, sizeof(v)) ? atoi(v) : 13;
	cp->aac_indexlength = fmtp_get(f->fmtp, "indexlength", v, sizeof(v)) ? atoi(v) : 3;
	if (cp->aac_sizelength < 1 || cp->aac_sizelength > 16 || cp->aac_indexlength < 0 || cp->aac_indexlength > 8)
		return -EINVAL;
	cp->rate = f->clock;
	cp->channels = f->channels;
	char hex[64];
	if (fmtp_get(f->fmtp, "config", hex, sizeof(hex))) {
		size_t n = strlen(hex) / 2;
		if (n > sizeof(cp->aac_config))
			n = sizeof(cp->aac_config);
		for (size_t i = 0; i < n; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			cp->aac_config[i] = (uint8_t)(hi * 16 + lo);
		}
		cp->aac_config_len = (int)n;
		/* AudioSpecificConfig: objectType(5) freqIndex(4) channels(4) */
		if (n >= 2) {
			int fi = (cp->aac_config[0] & 7) << 1 | cp->aac_config[1] >> 7;
			int chans = (cp->aac_config[1] >> 3) & 15;
			if (fi < 13)
				cp->rate = rates[fi];
			if (chans >= 1 && chans <= 2)
				cp->channels = chans;
		}
	}
	if (cp->channels > 2)
		cp->channels = 2;
	return 0;
}

static int params_for(struct sdp_fmt *f, enum codec_id id, int bits, bool aal2, struct codec_params *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->id = id;
	cp->g726_bits = bits;
	cp->g726_aal2 = aal2;
	cp->channels = 1;
	switch (id) {
	case C_PCMU:
	case C_PCMA:
	case C_G726:
		cp->clock = cp->rate = 8000;
		break;
	case C_G722:
		/* RTP clock 8000 although sampled at 16 kHz (RFC 3551 §4.5.2) */
		cp->clock = 8000;
		cp->rate = 16000;
		break;
	case C_OPUS: {
		/* opus/48000/2 always (RFC 7587 §7); send stereo only if asked. */
		char v[16];
		cp->clock = cp->rate = 48000;
		if ((fmtp_get(f->fmtp, "stereo", v, sizeof(v)) && !strcmp(v, "1")))
			cp->channels = 2;
		break;
	}
	case C_AAC:
		cp->clock = f->clock;
		return aac_params(f, cp);
	case C_NONE:
		return -EINVAL;
	}
	return 0;
}

/* The back-channel section (m=audio, a=sendonly) and its format: -c's codec,
 * else PCMU, else the server's first that we can send. 3 = no back-channel
 * section, 4 = no codec in common, 0 = chosen. */
static int choose(struct sdp_desc *d, const char *want, struct choice *ch)
{
	enum codec_id wid = C_NONE;
	int wbits = 0;
	if (want)
		codec_from_cli(want, &wid, &wbits);
	bool any = false;
	char offered[512] = "";
	struct sdp_media *fm = NULL;
	struct sdp_fmt *ff = NULL;
	enum codec_id fid = C_NONE;
	int fbits = 0;
	bool faal2 = false;
	for (int pass = 0; pass < 2 && !ff; pass++) {
		for (int i = 0; i < d->nmedia && !ff; i++) {
			struct sdp_media *m = &d->media[i];
			if (strcasecmp(m->type, "audio") || m->dir != DIR_SENDONLY)
				continue;
			any = true;
			for (int k = 0; k < m->nfmt; k++) {
				struct sdp_fmt *f = &m->fmt[k];
				int bits;
				bool aal2;
				enum codec_id id = fmt_codec(f, &bits, &aal2);
				if (pass == 0) {
					size_t ol = strlen(offered);
					snprintf(offered + ol, sizeof(offered) - ol, "%s%s/%d (pt %d)", ol ? ", " : "",
						 f->enc[0] ? f->enc : "?", f->clock, f->pt);
				}
				if (id == C_NONE)
					continue;
				bool match = want ? id == wid && (!wbits || wbits == bits) :
					     pass == 0 ? id == C_PCMU : true;
				/* "g726" alone prefers G726-32 when several are offered */
				if (match && want && wid == C_G726 && !wbits && pass == 0 && bits != 4)
					match = false;
				if (match) {
					fm = m;
					ff = f;
					fid = id;
					fbits = bits;
					faal2 = aal2;
					break;
				}
			}
		}
	}
	if (!any)
		return EXIT_NO_BACKCHANNEL;
	if (!ff) {
		if (want)
			msg("no codec in common: the server's back channel offers %s, not %s", offered, want);
		else
			msg("no codec in common: the server's back channel offers %s; rtsp-talk sends PCMU, PCMA, G722, "
			    "G726-16/24/32/40, MPEG4-GENERIC (AAC) and OPUS", offered);
		return EXIT_NO_CODEC;
	}
	ch->m = fm;
	ch->f = ff;
	if (params_for(ff, fid, fbits, faal2, &ch->cp) < 0) {
		msg("the server's %s parameters are not usable: %s", ff->enc, ff->fmtp);
		return EXIT_NO_CODEC;
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

static int keepalive(struct talk *t)
{
	int r = rtsp_send(t, t->get_parameter ? "GET_PARAMETER" : "OPTIONS",
			  t->get_parameter ? t->aggregate : t->tgt.url, NULL);
	return r < 0 ? r : 0;
}

/* Reads and handles what the server sent while we talk: answers to
 * keep-alives (a 401 refreshes the nonce, a 454 means the session is gone),
 * its requests, RTCP. -ECONNRESET when it closed the connection. */
static int service_input(struct talk *t, int timeout_ms)
{
	int r = conn_fill(t->c, timeout_ms);
	if (r < 0 && r != -EINTR)
		return r;
	for (;;) {
		r = conn_next_response(t->c, &t->resp);
		if (r <= 0)
			return r;
		int st = t->resp.status;
		if (st == 401 && t->auth.creds)
			auth_from_response(&t->auth, &t->resp);
		else if (st == 454) {
			msg("the server lost our session (454 Session Not Found)");
			conn_consume(t->c, t->resp.total_len);
			return -ENOENT;
		} else if (st >= 300 && t->verbose)
			msg("keep-alive answered %d %s", st, status_text(t));
		conn_consume(t->c, t->resp.total_len);
	}
}

static int run(const struct opts *o)
{
	int rc = EXIT_ERR;
	struct talk *t = calloc(1, sizeof(*t));
	struct conn *c = calloc(1, sizeof(*c));
	struct source src;
	struct rtp_out out;
	memset(&src, 0, sizeof(src));
	memset(&out, 0, sizeof(out));
	out.rtp_fd = out.rtcp_fd = -1;
	char *body = malloc(RTSP_MAX_BODY + 1);
	if (!t || !c || !body) {
		msg("out of memory");
		goto done;
	}
	c->rd.fd = c->post.fd = -1;
	c->verbose = o->verbose;
	t->c = c;
	t->verbose = o->verbose;
	t->timeout_ms = o->timeout_s * 1000;
	t->ws_path = o->ws_path;
	t->verify = !o->insecure;

	int r = target_parse(o->url, &t->tgt);
	if (r < 0) {
		msg("bad URL '%s'%s", o->url, r == -EPROTONOSUPPORT ? ": the schemes are rtsp://, rtsps:// (TLS) and "
		    "GStreamer's rtspu/rtspt/rtsph/rtspsu/rtspst/rtspsh://" : "");
		goto done;
	}
	/* -t names the transport; the URL's scheme says whether it is in TLS,
	 * and so do -t https and -t wss. */
	enum xport xp = o->xport_given ? o->xport : t->tgt.xport;
	if (o->xport_tls && target_secure(&t->tgt) < 0) {
		msg("bad URL '%s': too long", o->url);
		goto done;
	}
	if (t->tgt.tls && !(t->tls = tls_context(t->verify, o->ca_file)))
		goto done;
	if (o->userpass) {
		const char *colon = strchr(o->userpass, ':');
		size_t ul = colon ? (size_t)(colon - o->userpass) : strlen(o->userpass);
		copy_str(t->auth.user, sizeof(t->auth.user), o->userpass, ul);
		set_str(t->auth.pass, sizeof(t->auth.pass), colon ? colon + 1 : "");
		t->auth.creds = true;
	} else if (t->tgt.userinfo) {
		set_str(t->auth.user, sizeof(t->auth.user), t->tgt.user);
		set_str(t->auth.pass, sizeof(t->auth.pass), t->tgt.pass);
		t->auth.creds = true;
	}

	/* Connect. */
	r = xp == XP_HTTP ? tunnel_open(t) : xp == XP_WS ? ws_open(t) : link_open(t, &c->rd);
	if (r < 0)
		goto done;
	struct sockaddr_storage peer;
	socklen_t peerlen = sizeof(peer);
	if (getpeername(c->rd.fd, (struct sockaddr *)&peer, &peerlen) < 0) {
		msg("the connection to the server is gone: %s", strerror(errno));
		goto done;
	}

	/* OPTIONS: the Public header picks the keep-alive; a refusal is fine. */
	int st = rtsp_transact(t, "OPTIONS", t->tgt.url, NULL, NULL, 0);
	if (st < 0) {
		msg("OPTIONS %s: %s", t->tgt.url, xact_error(st));
		goto done;
	}
	if (st == 401) {
		msg("OPTIONS %s: 401 Unauthorized%s", t->tgt.url, t->auth.creds ? " (wrong user or password?)" :
		    " (give credentials with -u USER:PASS)");
		goto done;
	}
	{
		const char *pub = rtsp_response_header(&t->resp, "Public");
		t->get_parameter = st >= 300 || (pub && header_has_token(pub, "GET_PARAMETER"));
	}

	/* DESCRIBE with the back-channel tag. */
	st = rtsp_transact(t, "DESCRIBE", t->tgt.url,
			   "Accept: application/sdp\r\nRequire: " BC_REQUIRE "\r\n", body, RTSP_MAX_BODY + 1);
	if (st < 0) {
		msg("DESCRIBE %s: %s", t->tgt.url, xact_error(st));
		goto done;
	}
	if (st == 551) {
		const char *uns = rtsp_response_header(&t->resp, "Unsupported");
		msg("the server has no ONVIF audio back channel: DESCRIBE answered 551 %s%s%s", status_text(t),
		    uns ? "; Unsupported: " : "", uns ? uns : "");
		rc = EXIT_NO_BACKCHANNEL;
		goto done;
	}
	if (st != 200) {
		msg("DESCRIBE %s answered %d %s%s", t->tgt.url, st, status_text(t),
		    st == 401 ? (t->auth.creds ? " (wrong user or password?)" : " (give credentials with -u USER:PASS)") : "");
		goto done;
	}
	const char *cb = rtsp_response_header(&t->resp, "Content-Base");
	if (!cb)
		cb = rtsp_response_header(&t->resp, "Content-Location");
	set_str(t->base, sizeof(t->base), cb ? cb : t->tgt.url);

	struct sdp_desc *sdp = calloc(1, sizeof(*sdp));
	if (!sdp) {
		msg("out of memory");
		goto done;
	}
	if (sdp_parse(body, strlen(body), sdp) < 0) {
		msg("the server's SDP is malformed");
		free(sdp);
		goto done;
	}
	struct choice chosen;
	r = choose(sdp, o->codec, &chosen);
	if (r == EXIT_NO_BACKCHANNEL) {
		msg("the server has no ONVIF audio back channel: it accepted \"Require: " BC_REQUIRE
		    "\" but its SDP has no a=sendonly audio section");
		rc = r;
		free(sdp);
		goto teardown;
	}
	if (r) {
		rc = r;
		free(sdp);
		goto teardown;
	}
	if (url_join(t->base, chosen.m->control, t->setup_url, sizeof(t->setup_url)) < 0 ||
	    url_join(t->base, sdp->control, t->aggregate, sizeof(t->aggregate)) < 0) {
		msg("the server's control URL is too long or holds a space or a control character");
		free(sdp);
		goto done;
	}
	if (o->verbose)
		msg("back channel: %s, payload type %d %s/%d%s%s", t->setup_url, chosen.f->pt, chosen.f->enc,
		    chosen.f->clock, chosen.f->fmtp[0] ? " " : "", chosen.f->fmtp);
	out.pt = (uint8_t)chosen.f->pt;
	struct codec_params cp = chosen.cp;
	if (o->g726_aal2)
		cp.g726_aal2 = true;
	char fmt_name[32];
	set_str(fmt_name, sizeof(fmt_name), chosen.f->enc);
	/* RTP/SAVP (or SAVPF): SRTP under the section's SDES key, refused
	 * here, before any session exists, when we cannot do its crypto. */
	struct sdes key;
	memset(&key, 0, sizeof(key));
	bool srtp = strstr(chosen.m->proto, "SAVP") != NULL;
	if (srtp && sdes_from_sdp(chosen.m, &key) < 0) {
		free(sdp);
		goto done;
	}
	free(sdp);
	if (srtp) {
		r = srtp_start(&out, &key);
		explicit_bzero(key.key, sizeof(key.key));
		if (r < 0)
			goto done;
		if (!t->tgt.tls)
			msg("warning: the SRTP key came over plain RTSP: whoever saw the DESCRIBE answer can decrypt "
			    "the audio (rtsps:// keeps it secret)");
	}

	/* Open the input and the encoder before SETUP: a bad file fails
	 * without leaving a session on the camera. */
	src.input = o->input ? o->input : o->device;
	src.live = o->device != NULL;
	src.loop = o->loop;
	r = source_open(&src, &cp);
	if (r < 0) {
		if (r == -ENOMEM)
			msg("out of memory");
		goto done;
	}

	/* SETUP of the back-channel section only. */
	char transport[160];
	int cport = 0;
	if (xp == XP_UDP) {
		r = udp_pair(peer.ss_family, &out.rtp_fd, &out.rtcp_fd, &cport);
		if (r < 0) {
			msg("cannot bind UDP ports: %s", strerror(-r));
			goto done;
		}
		snprintf(transport, sizeof(transport), "Transport: RTP/%s;unicast;client_port=%d-%d\r\n"
			 "Require: " BC_REQUIRE "\r\n", srtp ? "SAVP" : "AVP", cport, cport + 1);
	} else {
		/* TCP, and the HTTP tunnel and WebSocket, which carry the same
		 * interleaved byte stream. */
		snprintf(transport, sizeof(transport), "Transport: RTP/%s/TCP;unicast;interleaved=0-1\r\n"
			 "Require: " BC_REQUIRE "\r\n", srtp ? "SAVP" : "AVP");
	}
	st = rtsp_transact(t, "SETUP", t->setup_url, transport, NULL, 0);
	if (st < 0) {
		msg("SETUP %s: %s", t->setup_url, xact_error(st));
		goto done;
	}
	if (st == 551) {
		msg("the server refused the back channel: SETUP answered 551 %s", status_text(t));
		rc = EXIT_NO_BACKCHANNEL;
		goto done;
	}
	if (st != 200) {
		msg("SETUP %s answered %d %s%s", t->setup_url, st, status_text(t),
		    st == 453 ? " (another client is talking)" :
		    st == 461 ? (xp == XP_UDP ? " (try -t tcp)" : " (try -t udp)") : "");
		goto done;
	}
	{
		const char *sv = rtsp_response_header(&t->resp, "Session");
		if (!sv || rtsp_parse_session(sv, t->session, sizeof(t->session)) < 0) {
			msg("SETUP answered without a usable Session header");
			goto done;
		}
		int to = rtsp_session_timeout(sv);
		t->timeout_s = to > 0 ? to : 60;
		const char *tv = rtsp_response_header(&t->resp, "Transport");
		struct rtsp_transport tr;
		if (!tv || rtsp_parse_transports(tv, &tr, 1) < 1) {
			msg("SETUP answered without a usable Transport header");
			goto teardown;
		}
		if (xp == XP_UDP) {
			if (tr.lower != RTSP_LOWER_UDP || tr.server_port[0] < 0) {
				msg("SETUP answered a Transport without server_port: %s", tv);
				goto teardown;
			}
			/* RTP to the server's address (or its source=, when it names
			 * another one), from our bound RTP port. */
			struct sockaddr_storage dst = peer;
			socklen_t dl = peerlen;
			if (tr.source[0]) {
				struct addrinfo hints, *res = NULL;
				memset(&hints, 0, sizeof(hints));
				hints.ai_family = peer.ss_family;
				hints.ai_flags = AI_NUMERICHOST;
				hints.ai_socktype = SOCK_DGRAM;
				if (!getaddrinfo(tr.source, NULL, &hints, &res)) {
					memcpy(&dst, res->ai_addr, res->ai_addrlen);
					dl = res->ai_addrlen;
					freeaddrinfo(res);
				}
			}
			if ((r = udp_connect(out.rtp_fd, &dst, dl, tr.server_port[0])) < 0 ||
			    (r = udp_connect(out.rtcp_fd, &dst, dl, tr.server_port[1] > 0 ? tr.server_port[1]
											   : tr.server_port[0] + 1)) < 0) {
				msg("cannot reach the server's UDP ports: %s", strerror(-r));
				goto teardown;
			}
		} else {
			out.channel = tr.lower == RTSP_LOWER_TCP && tr.interleaved[0] >= 0 ? tr.interleaved[0] : 0;
		}
	}

	/* PLAY (aggregate); the audio starts only after its 200. */
	st = rtsp_transact(t, "PLAY", t->aggregate, "Range: npt=0.000-\r\nRequire: " BC_REQUIRE "\r\n", NULL, 0);
	if (st == 459 || st == 460 || st == 455) {
		/* A server without aggregate control for the back channel. */
		st = rtsp_transact(t, "PLAY", t->setup_url, "Range: npt=0.000-\r\nRequire: " BC_REQUIRE "\r\n", NULL, 0);
	}
	if (st != 200) {
		if (st < 0)
			msg("PLAY %s: %s", t->aggregate, xact_error(st));
		else
			msg("PLAY %s answered %d %s", t->aggregate, st, status_text(t));
		goto teardown;
	}

	out.xport = xp;
	out.c = c;
	out.clock = cp.clock;
	getrandom(&out.ssrc, sizeof(out.ssrc), 0);
	getrandom(&out.seq, sizeof(out.seq), 0);
	getrandom(&out.ts_base, sizeof(out.ts_base), 0);
	static const char *const xport_names[][2] = {
		[XP_UDP] = { "UDP", "UDP (RTSP in TLS)" }, [XP_TCP] = { "TCP", "RTSPS (TCP in TLS)" },
		[XP_HTTP] = { "the HTTP tunnel", "the HTTPS tunnel" }, [XP_WS] = { "WebSocket", "secure WebSocket (wss)" },
	};
	msg("talking to %s: %s/%d, payload type %d, over %s%s%s", t->setup_url, fmt_name, cp.clock, out.pt,
	    xport_names[xp][t->tgt.tls], srtp ? ", SRTP " : "", srtp ? key.suite : "");

	/* Stream: each packet is due at start + its timestamp. */
	int64_t start = now_us();
	int64_t ka_every = (int64_t)(t->timeout_s > 2 ? t->timeout_s / 2 : 1) * 1000000;
	int64_t next_ka = start + ka_every;
	int64_t next_sr = start + 1000000;
	uint64_t limit = o->duration > 0 ? (uint64_t)(o->duration * cp.clock) : UINT64_MAX;
	rc = EXIT_OK;
	while (!g_stop) {
		r = source_fill(&src);
		if (r < 0) {
			if (r != AVERROR_EXIT) {
				char eb[128];
				msg("encoding: %s", av_err(r, eb, sizeof(eb)));
				rc = EXIT_ERR;
			}
			break;
		}
		if (!src.qlen)
			break;
		struct rtp_item *it = &src.q[src.qhead];
		if (it->ts >= limit)
			break;
		int64_t due = start + (int64_t)(it->ts * 1000000 / (uint64_t)cp.clock);
		int64_t now = now_us();
		if (src.live && now - due > 200000) {
			/* The capture is behind our clock (its clock is slower, or it
			 * stalled): move the schedule rather than burst to catch up. A
			 * capture ahead of it (a faster clock, or a device that does not
			 * block) is held to real time by the wait below. */
			start += now - due;
			due = now;
		}
		if (due > now) {
			int64_t w = due - now;
			if (next_ka - now < w)
				w = next_ka - now;
			r = service_input(t, w > 0 ? (int)((w + 999) / 1000) : 0);
		} else {
			r = service_input(t, 0);
		}
		if (r < 0 && r != -EINTR) {
			if (r == -ECONNRESET)
				msg("the server closed the connection");
			else if (r != -ENOENT)
				msg("reading from the server: %s", strerror(-r));
			rc = EXIT_ERR;
			break;
		}
		drain_udp(out.rtp_fd);
		drain_udp(out.rtcp_fd);
		now = now_us();
		if (now >= next_ka) {
			if (keepalive(t) < 0) {
				msg("sending the keep-alive failed");
				rc = EXIT_ERR;
				break;
			}
			next_ka = now + ka_every;
		}
		if (now < due)
			continue;
		r = rtp_send(&out, it);
		if (r < 0) {
			msg("sending RTP: %s", strerror(-r));
			rc = EXIT_ERR;
			break;
		}
		src.qhead = (src.qhead + 1) % QUEUE_LEN;
		src.qlen--;
		if (now >= next_sr) {
			rtcp_send_sr(&out);
			next_sr = now + 5000000;
		}
	}
	if (rc == EXIT_OK) {
		/* Let the last packets play out on the server before TEARDOWN. */
		int64_t end = now_us() + LINGER_MS * 1000;
		while (!g_stop && now_us() < end && service_input(t, (int)((end - now_us()) / 1000) + 1) >= 0)
			;
		rtcp_send_sr(&out);
		msg("sent %" PRIu32 " packets (%.1f s of audio)%s", out.packets,
		    out.packets ? (double)(out.last_ts) / cp.clock + 0.02 : 0.0, g_stop ? ", interrupted" : "");
	}

teardown:
	if (t->session[0]) {
		/* A signal may have cut the wait short: the TEARDOWN still goes. */
		g_stop = 0;
		int timeout = t->timeout_ms;
		t->timeout_ms = 3000;
		st = rtsp_transact(t, "TEARDOWN", t->aggregate, "Require: " BC_REQUIRE "\r\n", NULL, 0);
		t->timeout_ms = timeout;
		if (st != 200 && o->verbose)
			msg("TEARDOWN: %s", st < 0 ? xact_error(st) : status_text(t));
	}
done:
	source_close(&src);
	if (out.rtp_fd >= 0)
		close(out.rtp_fd);
	if (out.rtcp_fd >= 0)
		close(out.rtcp_fd);
	if (out.srtp)
		srtp_dealloc(out.srtp);
	if (c) {
		ws_close(c);
		link_close(&c->rd);
		link_close(&c->post);
		free(c->obuf);
	}
	if (t && t->tls)
		SSL_CTX_free(t->tls);
	free(c);
	free(t);
	free(body);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	av_log_set_level(o.verbose ? AV_LOG_WARNING : AV_LOG_ERROR);
	avdevice_register_all();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);   /* no SA_RESTART: poll() wakes up */
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return run(&o);
}
