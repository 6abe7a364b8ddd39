/* fuzz_talk.c — libFuzzer target for what rtsp-talk (tools/rtsp-talk.c)
 * reads from a camera or server it talks to: the SDP of the DESCRIBE
 * answer (sections, rtpmap/fmtp, directions, SDES keys in a=crypto) and
 * the codec chosen from it, WWW-Authenticate challenges and the
 * Authorization made from them, URLs and control attributes, and the
 * byte stream of the RTSP connection itself: plain, after the HTTP
 * tunnel's GET answer, or in WebSocket frames after a 101.
 *
 * The tool is compiled into this file (its functions are static), its
 * main() renamed. A socketpair stands in for the server: its other end
 * holds the input and is then shut, so every read ends without waiting.
 * Until PLAY is answered the server says one part of the input, then
 * (on a fresh socketpair, so that what the first part left unread stays
 * unread) the other: what comes while rtsp-talk sends.
 *
 * Input: byte 0 picks the parser, byte 1 holds flags (bits 0-3 the -c
 * codec, bit 4 -v, bit 5 credentials -u admin:secret; for the parser 1
 * without it, a user name with characters to escape); the rest goes to
 * the parser:
 *   0  an SDP
 *   1  WWW-Authenticate: line 1 the request URI, then a 401 response
 *      (also each of its lines straight to the challenge parser)
 *   2  a URL (line 1) and a control attribute (line 2)
 *   3  the server's side of an RTSP connection: a 16-bit length, that
 *      many bytes of answers to OPTIONS, DESCRIBE, SETUP and PLAY, then
 *      what comes while we send (keep-alive answers, requests, RTCP)
 *   4  the same, the first part starting with the HTTP tunnel's GET answer
 *   5  the same in WebSocket frames after a 101 (which must give the
 *      Sec-WebSocket-Accept of RFC 6455's example key)
 *   6  an RTSP message as -v prints it
 *
 * Beyond "no crash": parsed strings end inside their arrays and counts
 * stay inside theirs; the chosen format is one the SDP listed, in an
 * audio section marked sendonly, of the codec -c asked for, with usable
 * parameters; an Authorization fits its buffer, is one header line, and
 * its quoted values parse back to what the challenge said; the URL sent
 * to the server carries no user info; an SDES key never shows in -v's
 * printout or in what rtsp-talk says about an a=crypto it refuses.
 */
#include <stdio.h>

#include "tests/fuzz/fuzz-check.h"

/* The tool's messages (and -v's printout) go to a stream of ours:
 * /dev/null, or memory when the printout is checked. */
static FILE *talk_stderr;
#undef stderr
#define stderr talk_stderr
#define main rtsp_talk_main
#include "tools/rtsp-talk.c"
#undef main
#undef stderr
#define stderr stderr

#define TERMINATED(a) CHECK(memchr((a), 0, sizeof(a)) != NULL)

enum { M_SDP, M_AUTH, M_URL, M_RTSP, M_TUNNEL, M_WS, M_DUMP, M_COUNT };

static const char *const codecs[] = {
	NULL, "pcmu", "pcma", "g722", "g726", "g726-24", "g726-40", "aac", "opus",
};

static FILE *devnull;
static struct talk T;
static struct conn C;
static struct rtsp_response resp;
static struct sdp_desc sdp;
static char body[RTSP_MAX_BODY + 1];
static int peers[2] = { -1, -1 };
static const uint8_t *later;      /* what the server says after PLAY */
static size_t later_len;

/* ---------------------------------------------------------------- checks */

/* No SDES key shows: every "inline:" (any case) in s[0..n) is followed
 * by "..." (or as much of it as a truncated text holds), or by no key. */
static void check_no_key(const char *s, size_t n)
{
	for (size_t i = 0; i + 7 <= n; i++) {
		if (strncasecmp(s + i, "inline:", 7))
			continue;
		size_t k = i + 7, dots = n - k < 3 ? n - k : 3;
		CHECK(k == n || s[k] == 0 || strchr("|; \t\r", s[k]) || !memcmp(s + k, "...", dots));
	}
}

/* -v's printout: the a=crypto lines it shows ("< " or "<< " before what
 * the server sent, "> " before what we send) keep their keys to
 * themselves. */
static void check_printout(const char *out, size_t n)
{
	for (size_t i = 0; i < n; ) {
		const char *eol = memchr(out + i, '\n', n - i);
		size_t len = (size_t)((eol ? eol : out + n) - (out + i));
		const char *line = out + i;
		size_t skip = len >= 3 && !strncmp(line, "<< ", 3) ? 3 :
			      len >= 2 && (!strncmp(line, "< ", 2) || !strncmp(line, "> ", 2)) ? 2 : 0;
		if (skip && len - skip > 9 && !strncmp(line + skip, "a=crypto:", 9))
			check_no_key(line, len);
		i += len + 1;
	}
}

static void check_params(const struct codec_params *cp)
{
	CHECK(cp->clock > 0 && cp->rate > 0);
	CHECK(cp->channels == 1 || cp->channels == 2);
	if (cp->id == C_G726)
		CHECK(cp->g726_bits >= 2 && cp->g726_bits <= 5);
	if (cp->id == C_AAC) {
		CHECK(cp->aac_sizelength >= 1 && cp->aac_sizelength <= 16);
		CHECK(cp->aac_indexlength >= 0 && cp->aac_indexlength <= 8);
		CHECK(cp->aac_config_len >= 0 && cp->aac_config_len <= (int)sizeof(cp->aac_config));
	}
}

static void check_sdes(const char *v)
{
	struct sdes k;
	char why[160] = "";
	int r = sdes_parse(v, &k, why, sizeof(why));
	CHECK(r == 0 || r == -ENOTSUP || r == -EBADMSG);
	TERMINATED(why);
	check_no_key(why, strlen(why));
	if (r == 0) {
		TERMINATED(k.suite);
		CHECK(!strcmp(k.suite, k.tag32 ? "AES_CM_128_HMAC_SHA1_32" : "AES_CM_128_HMAC_SHA1_80"));
	}
}

static void check_sdp(struct sdp_desc *d)
{
	TERMINATED(d->control);
	CHECK(d->dir >= DIR_SENDRECV && d->dir <= DIR_INACTIVE);
	CHECK(d->nmedia >= 0 && d->nmedia <= SDP_MAX_MEDIA);
	for (int i = 0; i < d->nmedia; i++) {
		struct sdp_media *m = &d->media[i];
		TERMINATED(m->type);
		TERMINATED(m->proto);
		TERMINATED(m->control);
		CHECK(m->dir >= DIR_SENDRECV && m->dir <= DIR_INACTIVE);
		CHECK(m->nfmt >= 0 && m->nfmt <= SDP_MAX_FMT);
		CHECK(m->ncrypto >= 0 && m->ncrypto <= SDP_MAX_CRYPTO);
		for (int k = 0; k < m->ncrypto; k++) {
			TERMINATED(m->crypto[k]);
			check_sdes(m->crypto[k]);
		}
		for (int k = 0; k < m->nfmt; k++) {
			struct sdp_fmt *f = &m->fmt[k];
			TERMINATED(f->enc);
			TERMINATED(f->fmtp);
			CHECK(f->pt >= 0 && f->pt <= 127);
			CHECK(f->channels >= 1);
			static const char *const keys[] = { "mode", "config", "sizelength", "indexlength", "stereo" };
			for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
				char v[8];
				memset(v, 'x', sizeof(v));
				if (fmtp_get(f->fmtp, keys[j], v, sizeof(v)))
					TERMINATED(v);
			}
			int bits;
			bool aal2;
			enum codec_id id = fmt_codec(f, &bits, &aal2);
			CHECK(id >= C_PCMU && id <= C_NONE);
			if (id == C_G726)
				CHECK(bits >= 2 && bits <= 5);
			struct codec_params cp;
			if (id != C_NONE && params_for(f, id, bits, aal2, &cp) == 0)
				check_params(&cp);
		}
	}
}

/* choose() gave ch for d: a format listed in a sendonly audio section,
 * of the codec asked for, with usable parameters. */
static void check_choice(struct sdp_desc *d, const struct choice *ch, const char *want)
{
	CHECK(ch->m >= d->media && ch->m < d->media + d->nmedia);
	CHECK(ch->f >= ch->m->fmt && ch->f < ch->m->fmt + ch->m->nfmt);
	CHECK(!strcasecmp(ch->m->type, "audio") && ch->m->dir == DIR_SENDONLY);
	CHECK(ch->f->pt >= 0 && ch->f->pt <= 127);
	int bits;
	bool aal2;
	enum codec_id id = fmt_codec(ch->f, &bits, &aal2);
	CHECK(id != C_NONE && id == ch->cp.id);
	if (want) {
		enum codec_id wid;
		int wbits;
		CHECK(codec_from_cli(want, &wid, &wbits) == 0);
		CHECK(id == wid && (!wbits || wbits == bits));
	}
	check_params(&ch->cp);
}

static void check_auth(const struct auth *a)
{
	TERMINATED(a->realm);
	TERMINATED(a->nonce);
	TERMINATED(a->opaque);
	TERMINATED(a->algorithm);
	CHECK(a->scheme == AUTH_BASIC || a->scheme == AUTH_DIGEST);
	if (a->scheme == AUTH_DIGEST)
		CHECK(a->md != NULL && a->nonce[0]);
}

/* The Authorization auth_header() wrote for a: one header line that fits;
 * a Digest one's realm, nonce and opaque read back as they were given. */
static void check_authorization(const struct auth *a, const char *out, size_t cap, int r)
{
	CHECK(r == 0 || r == -ENOSPC);
	CHECK(memchr(out, 0, cap) != NULL);
	if (r < 0)
		return;
	size_t n = strlen(out);
	if (!n)
		return;
	CHECK(n >= 17 && !strncmp(out, "Authorization: ", 15) && !strcmp(out + n - 2, "\r\n"));
	CHECK(strcspn(out, "\r\n") == n - 2);
	if (a->scheme != AUTH_DIGEST)
		return;
	struct pick pk;
	memset(&pk, 0, sizeof(pk));
	char v[2048];
	copy_str(v, sizeof(v), out + 15, n - 17);
	parse_challenges(v, pick_one, &pk);
	CHECK(pk.best.scheme == AUTH_DIGEST);
	CHECK(!strcmp(pk.best.realm, a->realm));
	CHECK(!strcmp(pk.best.nonce, a->nonce));
	CHECK(!strcmp(pk.best.opaque, a->opaque));
}

static void on_challenge(const struct challenge *c, void *arg)
{
	int *n = arg;
	(*n)++;
	CHECK(c->scheme == AUTH_NONE || c->scheme == AUTH_BASIC || c->scheme == AUTH_DIGEST);
	TERMINATED(c->realm);
	TERMINATED(c->nonce);
	TERMINATED(c->opaque);
	TERMINATED(c->algorithm);
	TERMINATED(c->qop);
}

/* ---------------------------------------------------------------- helpers */

/* Cuts s at the next '\n' (a CR before it goes too); returns the line and
 * moves *s past it, or NULL at the end. */
static char *next_line(char **s)
{
	if (!*s)
		return NULL;
	char *line = *s, *nl = strchr(line, '\n');
	if (nl) {
		*nl = 0;
		*s = nl + 1;
		if (nl > line && nl[-1] == '\r')
			nl[-1] = 0;
	} else {
		*s = NULL;
	}
	return line;
}

static void set_creds(struct auth *a, bool creds)
{
	memset(a, 0, sizeof(*a));
	if (!creds)
		return;
	set_str(a->user, sizeof(a->user), "admin");
	set_str(a->pass, sizeof(a->pass), "secret");
	a->creds = true;
}

/* Our end of a connection whose server has said data[0..len) and no more
 * (*peer: its end, still open to what we send). */
static int server_says(const uint8_t *data, size_t len, int *peer)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int sz = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (len > sizeof(C.in) + sizeof(C.ws_in))
		len = sizeof(C.in) + sizeof(C.ws_in);
	for (size_t off = 0; off < len; ) {
		ssize_t w = send(sv[1], data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(sv[1], SHUT_WR);
	*peer = sv[1];
	return sv[0];
}

/* The connection, with data[0..len) from the server until PLAY. */
static void stream_open(const uint8_t *data, size_t len, uint8_t flags)
{
	memset(&C, 0, sizeof(C));
	C.rd.fd = server_says(data, len, &peers[0]);
	C.post.fd = -1;
	C.verbose = flags & 0x10;
	memset(&T, 0, sizeof(T));
	T.c = &C;
	T.verbose = C.verbose;
	T.timeout_ms = 2000;
	T.ws_path = "/websocket";
	CHECK(target_parse("rtsp://192.0.2.10/onvif/media?profile=Profile_1", &T.tgt) == 0);
	set_creds(&T.auth, flags & 0x20);
}

static void stream_close(void)
{
	ws_close(&C);
	link_close(&C.rd);
	link_close(&C.post);
	free(C.obuf);
	C.obuf = NULL;
	for (int i = 0; i < 2; i++) {
		if (peers[i] >= 0)
			close(peers[i]);
		peers[i] = -1;
	}
}

/* ---------------------------------------------------------------- the parsers */

/* Whether the idx-th m= line of text[0..len) lists payload type pt. */
static bool listed(const char *text, size_t len, int idx, int pt)
{
	const char *p = text, *end = text + len;
	for (int i = 0; p < end; ) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((eol ? eol : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n >= 2 && !memcmp(p, "m=", 2) && i++ == idx) {
			char line[1024], *save = NULL, *e;
			copy_str(line, sizeof(line), p + 2, n - 2);
			char *tok = strtok_r(line, " ", &save);
			for (int k = 0; tok; k++, tok = strtok_r(NULL, " ", &save))
				if (k >= 3 && strtol(tok, &e, 10) == pt && !*e)
					return true;
			return false;
		}
		p = eol ? eol + 1 : end;
	}
	return false;
}

static void fuzz_sdp(const char *text, size_t len, const char *want)
{
	if (sdp_parse(text, len, &sdp) < 0)
		return;
	check_sdp(&sdp);
	struct choice ch;
	if (choose(&sdp, want, &ch))
		return;
	check_choice(&sdp, &ch, want);
	CHECK(listed(text, len, (int)(ch.m - sdp.media), ch.f->pt));
	char url[1200];
	if (url_join("rtsp://192.0.2.10/onvif/media", ch.m->control, url, sizeof(url)) == 0)
		TERMINATED(url);
	struct sdes key;
	if (strstr(ch.m->proto, "SAVP"))
		sdes_from_sdp(ch.m, &key);
}

static void fuzz_auth(char *text, bool creds)
{
	char *uri = next_line(&text);
	if (!uri || !text)
		return;
	/* a request URI: no blank or control byte, at most as long as
	 * rtsp-talk's URL buffers hold */
	for (char *p = uri; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			*p = 0;
	if (strlen(uri) >= sizeof(T.setup_url))
		uri[sizeof(T.setup_url) - 1] = 0;
	int r = rtsp_parse_response(text, strlen(text), &resp);
	for (char *s = text, *line; (line = next_line(&s)); ) {
		int n = 0;
		parse_challenges(line, on_challenge, &n);
	}
	if (r <= 0)
		return;
	struct auth a;
	set_creds(&a, true);
	if (!creds) {   /* from a URL's %-escapes: characters to escape */
		set_str(a.user, sizeof(a.user), "domain\\user \"with quotes\"");
		set_str(a.pass, sizeof(a.pass), "p:a\"ss");
	}
	int ar = auth_from_response(&a, &resp);
	CHECK(ar == 0 || ar == 1 || ar == -EACCES);
	if (ar < 0)
		return;
	check_auth(&a);
	char out[2048];
	for (int i = 0; i < 2; i++) {
		memset(out, 'x', sizeof(out));
		r = auth_header(&a, i ? "GET" : "DESCRIBE", uri, out, sizeof(out));
		check_authorization(&a, out, sizeof(out), r);
	}
}

static void fuzz_url(char *text)
{
	char *url = next_line(&text), *control = next_line(&text);
	struct target tg;
	int r = target_parse(url, &tg);
	CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT);
	if (r)
		return;
	TERMINATED(tg.url);
	TERMINATED(tg.host);
	TERMINATED(tg.path);
	TERMINATED(tg.user);
	TERMINATED(tg.pass);
	CHECK(tg.host[0]);
	CHECK(tg.port > 0 && tg.port <= 65535);
	CHECK(!strncmp(tg.url, tg.tls ? "rtsps://" : "rtsp://", tg.tls ? 8 : 7));
	const char *auth = strstr(tg.url, "://") + 3;
	CHECK(!memchr(auth, '@', strcspn(auth, "/?#")));
	CHECK(!strchr(tg.url, '#') && tg.path[0] == '/' && !strchr(tg.path, '#'));
	if (!tg.userinfo)
		CHECK(!tg.user[0] && !tg.pass[0]);
	char out[1200];
	if (control && url_join(tg.url, control, out, sizeof(out)) == 0)
		TERMINATED(out);
	if (target_secure(&tg) == 0) {
		CHECK(tg.tls && !strncmp(tg.url, "rtsps://", 8));
		TERMINATED(tg.url);
	}
}

/* What run() does from OPTIONS to TEARDOWN, with the server's side from
 * the input. */
static void converse(const char *want)
{
	struct talk *t = &T;
	int st = rtsp_transact(t, "OPTIONS", t->tgt.url, NULL, NULL, 0);
	if (st < 0)
		return;
	const char *pub = rtsp_response_header(&t->resp, "Public");
	t->get_parameter = st >= 300 || (pub && header_has_token(pub, "GET_PARAMETER"));
	st = rtsp_transact(t, "DESCRIBE", t->tgt.url, "Accept: application/sdp\r\nRequire: " BC_REQUIRE "\r\n", body,
			   sizeof(body));
	if (st < 0)
		return;
	TERMINATED(body);
	if (st != 200)
		return;
	const char *cb = rtsp_response_header(&t->resp, "Content-Base");
	if (!cb)
		cb = rtsp_response_header(&t->resp, "Content-Location");
	set_str(t->base, sizeof(t->base), cb ? cb : t->tgt.url);
	if (sdp_parse(body, strlen(body), &sdp) < 0)
		return;
	check_sdp(&sdp);
	struct choice ch;
	if (choose(&sdp, want, &ch))
		return;
	check_choice(&sdp, &ch, want);
	if (url_join(t->base, ch.m->control, t->setup_url, sizeof(t->setup_url)) < 0 ||
	    url_join(t->base, sdp.control, t->aggregate, sizeof(t->aggregate)) < 0)
		return;
	struct sdes key;
	if (strstr(ch.m->proto, "SAVP") && sdes_from_sdp(ch.m, &key) < 0)
		return;
	st = rtsp_transact(t, "SETUP", t->setup_url,
			   "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nRequire: " BC_REQUIRE "\r\n", NULL, 0);
	if (st != 200)
		return;
	const char *sv = rtsp_response_header(&t->resp, "Session");
	if (!sv || rtsp_parse_session(sv, t->session, sizeof(t->session)) < 0)
		return;
	int to = rtsp_session_timeout(sv);
	t->timeout_s = to > 0 ? to : 60;
	const char *tv = rtsp_response_header(&t->resp, "Transport");
	struct rtsp_transport tr;
	if (!tv || rtsp_parse_transports(tv, &tr, 1) < 1)
		return;
	st = rtsp_transact(t, "PLAY", t->aggregate, "Range: npt=0.000-\r\nRequire: " BC_REQUIRE "\r\n", NULL, 0);
	if (st == 459 || st == 460 || st == 455)
		st = rtsp_transact(t, "PLAY", t->setup_url, "Range: npt=0.000-\r\nRequire: " BC_REQUIRE "\r\n", NULL, 0);
	if (st != 200)
		return;
	/* What the server says while we talk, on the same descriptor. */
	int fd = server_says(later, later_len, &peers[1]);
	if (dup2(fd, C.rd.fd) < 0)
		abort();
	close(fd);
	keepalive(t);
	for (int i = 0; i < 1000 && service_input(t, 0) >= 0; i++)
		CHECK(C.inlen <= sizeof(C.in) && C.ws_inlen <= sizeof(C.ws_in));
	rtsp_transact(t, "TEARDOWN", t->aggregate, "Require: " BC_REQUIRE "\r\n", NULL, 0);
}

/* data: a 16-bit length, that many bytes until PLAY, the rest after. */
static void fuzz_stream(int mode, const uint8_t *data, size_t len, uint8_t flags, const char *want)
{
	size_t first = len >= 2 ? (size_t)(data[0] << 8 | data[1]) : 0;
	data += len >= 2 ? 2 : len;
	len -= len >= 2 ? 2 : len;
	if (first > len)
		first = len;
	later = data + first;
	later_len = len - first;
	stream_open(data, first, flags);
	bool verbose = C.verbose;
	char *out = NULL;
	size_t outlen = 0;
	if (verbose && !(talk_stderr = open_memstream(&out, &outlen)))
		abort();
	static const char get[] = "GET /onvif/media HTTP/1.0\r\nx-sessioncookie: 0123456789abcdef\r\n\r\n";
	static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";   /* RFC 6455 §1.3 */
	static char ws_get[200], accept[29];
	if (!accept[0]) {
		CHECK(ws_accept_key(ws_key, accept) == 0);
		snprintf(ws_get, sizeof(ws_get), "GET /websocket HTTP/1.1\r\nSec-WebSocket-Key: %s\r\n\r\n", ws_key);
	}
	if (mode == M_RTSP) {
		converse(want);
	} else if (mode == M_TUNNEL) {
		C.post.fd = dup(C.rd.fd);
		int st = http_exchange(&T, get, sizeof(get) - 1, "HTTP tunnel");
		if (st == 401 && T.auth.creds) {
			struct auth a = T.auth;
			if (auth_from_response(&a, &T.resp) >= 0) {
				char authz[2048];
				int r = auth_header(&a, "GET", T.tgt.path, authz, sizeof(authz));
				check_authorization(&a, authz, sizeof(authz), r);
			}
		} else if (st == 200) {
			converse(want);
		}
	} else {
		int st = http_exchange(&T, ws_get, strlen(ws_get), "WebSocket");
		if (st == 101 && ws_check_answer(&T, accept, "WebSocket") == 0) {
			ws_start(&C);
			converse(want);
		}
	}
	CHECK(C.inlen <= sizeof(C.in) && C.ws_inlen <= sizeof(C.ws_in));
	stream_close();
	if (verbose) {
		fclose(talk_stderr);
		talk_stderr = devnull;
		check_printout(out, outlen);
		free(out);
	}
}

static void fuzz_dump(const char *text, size_t len, char *copy)
{
	char *out = NULL;
	size_t outlen = 0;
	talk_stderr = open_memstream(&out, &outlen);
	if (!talk_stderr)
		abort();
	dump("< ", text, len);
	fclose(talk_stderr);
	talk_stderr = devnull;
	check_printout(out, outlen);
	free(out);
	for (char *s = copy, *line; (line = next_line(&s)); )
		if (!strncmp(line, "a=crypto:", 9))
			check_sdes(line + 9);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	talk_stderr = devnull;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int mode = data[0] % M_COUNT;
	uint8_t flags = data[1];
	const char *want = codecs[(flags & 15) % (sizeof(codecs) / sizeof(codecs[0]))];
	data += 2;
	size -= 2;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	switch (mode) {
	case M_SDP:
		fuzz_sdp((const char *)data, size, want);
		break;
	case M_AUTH:
		fuzz_auth(text, flags & 0x20);
		break;
	case M_URL:
		fuzz_url(text);
		break;
	case M_RTSP:
	case M_TUNNEL:
	case M_WS:
		fuzz_stream(mode, data, size, flags, want);
		break;
	case M_DUMP:
		fuzz_dump((const char *)data, size, text);
		break;
	}
	free(text);
	return 0;
}
