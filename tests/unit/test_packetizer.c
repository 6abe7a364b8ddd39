/* test_packetizer.c — unit tests of the RTP packetizer (worker/packetizer.c):
 * synthetic access units in, RTP packets out, checked against RFC 6184
 * (H.264), RFC 7798 (H.265), RFC 3640 (AAC), RFC 2435 (JPEG), RFC 3551
 * (G.711, G.722) and RFC 7587 (Opus). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>

#include "worker/packetizer.h"

/* ------------------------------------------------------------ capture */

#define MAX_CAPTURE 256

struct rtp_pkt {
	uint8_t *data;
	size_t len;
	bool key;
};

struct capture {
	struct rtp_pkt pk[MAX_CAPTURE];
	int n;
	bool overflow;
};

static void on_rtp(void *arg, const uint8_t *rtp, size_t len, bool key)
{
	struct capture *c = arg;
	/* no assertion here: we are inside libavformat */
	if (c->n >= MAX_CAPTURE) {
		c->overflow = true;
		return;
	}
	struct rtp_pkt *k = &c->pk[c->n++];
	k->data = malloc(len ? len : 1);
	if (!k->data) {
		c->overflow = true;
		c->n--;
		return;
	}
	memcpy(k->data, rtp, len);
	k->len = len;
	k->key = key;
}

static void capture_free(struct capture *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->pk[i].data);
	c->n = 0;
	c->overflow = false;
}

static struct capture *capture_new(void)
{
	struct capture *c = calloc(1, sizeof *c);
	assert_non_null(c);
	return c;
}

static void capture_delete(struct capture *c)
{
	capture_free(c);
	free(c);
}

/* ------------------------------------------------------------ RTP */

struct rtp_hdr {
	int marker, pt;
	uint16_t seq;
	uint32_t ts, ssrc;
	const uint8_t *pl;
	size_t plen;
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned rd16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Parses the fixed RTP header (RFC 3550 §5.1): version 2, no padding, no
 * extension, no CSRC, at most RTP_MTU bytes in all. */
static void parse_rtp(const struct rtp_pkt *k, struct rtp_hdr *h)
{
	assert_true(k->len > 12);
	assert_true(k->len <= RTP_MTU);
	const uint8_t *b = k->data;
	assert_int_equal(b[0] >> 6, 2);                 /* version */
	assert_int_equal(b[0] & 0x20, 0);               /* padding */
	assert_int_equal(b[0] & 0x10, 0);               /* extension */
	assert_int_equal(b[0] & 0x0f, 0);               /* CSRC count */
	h->marker = b[1] >> 7;
	h->pt = b[1] & 0x7f;
	h->seq = (uint16_t)rd16(b + 2);
	h->ts = rd32(b + 4);
	h->ssrc = rd32(b + 8);
	h->pl = b + 12;
	h->plen = k->len - 12;
}

/* Checks what all packets of a video stream share: the SSRC, the payload
 * type, consecutive sequence numbers, and for every frame [first, last]
 * (given as the index of each frame's first packet, frames[nframes] = n):
 * one timestamp, the marker on the last packet only, key only on the first
 * packet of a key frame. */
static void check_video_stream(const struct capture *c, const int *frames, int nframes,
			       const bool *key, uint32_t ssrc, int pt, uint32_t *ts_out)
{
	assert_false(c->overflow);
	assert_int_equal(frames[nframes], c->n);
	struct rtp_hdr h0;
	parse_rtp(&c->pk[0], &h0);
	for (int f = 0; f < nframes; f++) {
		assert_true(frames[f] < frames[f + 1]);
		struct rtp_hdr first;
		parse_rtp(&c->pk[frames[f]], &first);
		if (ts_out)
			ts_out[f] = first.ts;
		for (int i = frames[f]; i < frames[f + 1]; i++) {
			struct rtp_hdr h;
			parse_rtp(&c->pk[i], &h);
			assert_int_equal(h.ssrc, ssrc);
			assert_int_equal(h.pt, pt);
			assert_int_equal(h.seq, (uint16_t)(h0.seq + i));
			assert_int_equal(h.ts, first.ts);
			assert_int_equal(h.marker, i == frames[f + 1] - 1);
			assert_int_equal(c->pk[i].key, key[f] && i == frames[f]);
		}
	}
}

/* ------------------------------------------------------------ helpers */

static AVCodecParameters *video_par(enum AVCodecID id, int w, int h)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	assert_non_null(par);
	par->codec_type = AVMEDIA_TYPE_VIDEO;
	par->codec_id = id;
	par->width = w;
	par->height = h;
	return par;
}

static AVCodecParameters *audio_par(enum AVCodecID id, int rate, int channels)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	assert_non_null(par);
	par->codec_type = AVMEDIA_TYPE_AUDIO;
	par->codec_id = id;
	par->sample_rate = rate;
	av_channel_layout_default(&par->ch_layout, channels);
	return par;
}

static void set_extradata(AVCodecParameters *par, const uint8_t *d, size_t len)
{
	par->extradata = av_mallocz(len + AV_INPUT_BUFFER_PADDING_SIZE);
	assert_non_null(par->extradata);
	memcpy(par->extradata, d, len);
	par->extradata_size = (int)len;
}

static struct packetizer *open_pk(const AVCodecParameters *par, AVRational tb, int pt, uint32_t ssrc,
				  struct capture *c)
{
	struct packetizer *p = NULL;
	char err[256] = "";
	int r = packetizer_open(&p, par, tb, pt, ssrc, on_rtp, c, err, sizeof err);
	if (r < 0)
		fail_msg("packetizer_open: %d %s", r, err);
	assert_non_null(p);
	return p;
}

static void write_pkt(struct packetizer *p, const uint8_t *data, size_t len, int64_t pts, bool key)
{
	AVPacket *pkt = av_packet_alloc();
	assert_non_null(pkt);
	assert_int_equal(av_new_packet(pkt, (int)len), 0);
	memcpy(pkt->data, data, len);
	pkt->pts = pkt->dts = pts;
	pkt->flags = key ? AV_PKT_FLAG_KEY : 0;
	int r = packetizer_write(p, pkt);
	av_packet_free(&pkt);
	assert_int_equal(r, 0);
}

/* The track's SDP section, checked for what packetizer_sdp() promises:
 * starts with m=, CRLF line ends, no empty line, no a=control, no c=. */
static void get_sdp(const struct packetizer *p, char *buf, size_t len)
{
	int n = packetizer_sdp(p, buf, len);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_true(strncmp(buf, "m=", 2) == 0);
	assert_null(strstr(buf, "a=control"));
	assert_true(n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n');
	/* no c= line, one m= line (base64 in an fmtp line may well contain
	 * "c=" or "m=": look at line starts only) */
	for (const char *l = buf; *l; l = strstr(l, "\r\n") + 2) {
		assert_true(strncmp(l, "c=", 2) != 0);
		assert_true(l == buf || strncmp(l, "m=", 2) != 0);
	}
	assert_null(strstr(buf, "\r\n\r\n"));
	for (int i = 0; i < n; i++) {
		if (buf[i] == '\n')
			assert_true(i > 0 && buf[i - 1] == '\r');
		if (buf[i] == '\r')
			assert_true(i + 1 < n && buf[i + 1] == '\n');
	}
}

static bool has_line(const char *sdp, const char *line)
{
	size_t l = strlen(line);
	for (const char *s = sdp; (s = strstr(s, line)); s++)
		if ((s == sdp || s[-1] == '\n') && s[l] == '\r')
			return true;
	return false;
}

/* The value of key=value in the a=fmtp line ("; " or ";" separated). */
static bool fmtp_param(const char *sdp, const char *key, char *val, size_t vlen)
{
	const char *f = strstr(sdp, "a=fmtp:");
	if (!f)
		return false;
	const char *end = strstr(f, "\r\n");
	const char *s = strchr(f, ' ');
	size_t kl = strlen(key);
	while (s && s < end) {
		while (*s == ' ' || *s == ';')
			s++;
		const char *e = s;
		while (e < end && *e != ';')
			e++;
		if ((size_t)(e - s) > kl && strncasecmp(s, key, kl) == 0 && s[kl] == '=') {
			size_t n = (size_t)(e - s) - kl - 1;
			if (n >= vlen)
				return false;
			memcpy(val, s + kl + 1, n);
			val[n] = 0;
			return true;
		}
		s = e;
	}
	return false;
}

static void base64(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = 0;
}

/* NAL payload bytes without start code emulation (no zero bytes). */
static void fill_nal(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(1 + (i * 37 + seed * 101 + (i >> 7)) % 255);
}

/* ------------------------------------------------------------ H.264 */

struct nal {
	const uint8_t *data;
	size_t len;
};

struct nal_list {
	uint8_t *buf[64];
	size_t len[64];
	int n;
	int fu_packets;         /* FU-A / FU packets seen */
	int agg_packets;        /* STAP-A / AP packets seen */
	int single_packets;
};

static void nal_list_free(struct nal_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->buf[i]);
	memset(l, 0, sizeof *l);
}

static void nal_list_add(struct nal_list *l, const uint8_t *d, size_t len)
{
	assert_true(l->n < 64);
	l->buf[l->n] = malloc(len);
	assert_non_null(l->buf[l->n]);
	memcpy(l->buf[l->n], d, len);
	l->len[l->n++] = len;
}

/* RFC 6184 receiver for packetization-mode 1, with the checks of the
 * structures: single NAL unit packets (types 1-23), STAP-A (24: 16-bit
 * sizes), FU-A (28: NRI of the NAL unit,
 * S on the first fragment only, E on the last only, R zero, same type). */
static void h264_depacketize(const struct capture *c, int from, int to, struct nal_list *out)
{
	uint8_t *fu = NULL;
	size_t fu_len = 0;
	int fu_type = -1, fu_nri = -1;
	for (int i = from; i < to; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		const uint8_t *p = h.pl;
		size_t n = h.plen;
		assert_true(n >= 2);
		assert_int_equal(p[0] & 0x80, 0);       /* F */
		int type = p[0] & 0x1f;
		if (type != 28)
			assert_null(fu);                /* a FU-A left unfinished */
		if (type >= 1 && type <= 23) {
			nal_list_add(out, p, n);
			out->single_packets++;
		} else if (type == 24) {
			size_t off = 1;
			int count = 0;
			while (off < n) {
				assert_true(off + 2 <= n);
				size_t sz = rd16(p + off);
				off += 2;
				assert_true(sz > 0);
				assert_true(off + sz <= n);
				nal_list_add(out, p + off, sz);
				off += sz;
				count++;
			}
			assert_int_equal(off, n);
			assert_true(count >= 1);
			/* its NRI: see test_h264_stap_a_nri */
			out->agg_packets++;
		} else if (type == 28) {
			uint8_t fh = p[1];
			bool s = fh & 0x80, e = fh & 0x40;
			assert_int_equal(fh & 0x20, 0); /* R */
			assert_false(s && e);
			assert_true(n > 2);
			if (s) {
				assert_null(fu);
				fu_type = fh & 0x1f;
				fu_nri = p[0] & 0x60;
				fu = malloc(1);
				assert_non_null(fu);
				fu[0] = (uint8_t)(fu_nri | fu_type);
				fu_len = 1;
			} else {
				assert_non_null(fu);
				assert_int_equal(fh & 0x1f, fu_type);
				assert_int_equal(p[0] & 0x60, fu_nri);
			}
			uint8_t *nb = realloc(fu, fu_len + n - 2);
			assert_non_null(nb);
			fu = nb;
			memcpy(fu + fu_len, p + 2, n - 2);
			fu_len += n - 2;
			out->fu_packets++;
			if (e) {
				nal_list_add(out, fu, fu_len);
				free(fu);
				fu = NULL;
			}
		} else {
			fail_msg("unexpected H.264 payload type %d", type);
		}
	}
	assert_null(fu);
}

/* Compares the NAL units a receiver gets with what was sent. */
static void check_nals(const struct nal_list *got, const struct nal *want, int nwant)
{
	assert_int_equal(got->n, nwant);
	for (int i = 0; i < nwant; i++) {
		assert_int_equal(got->len[i], want[i].len);
		assert_memory_equal(got->buf[i], want[i].data, want[i].len);
	}
}

static uint8_t h264_sps[] = { 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8 };
static uint8_t h264_pps[] = { 0x68, 0xce, 0x3c, 0x80 };

/* Annex B: start codes of 4 and 3 bytes. */
static size_t annexb(uint8_t *out, const struct nal *nals, int n)
{
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		static const uint8_t sc4[] = { 0, 0, 0, 1 };
		size_t scl = i % 2 ? 3 : 4;
		memcpy(out + o, sc4 + 4 - scl, scl);
		o += scl;
		memcpy(out + o, nals[i].data, nals[i].len);
		o += nals[i].len;
	}
	return o;
}

/* Length-prefixed (avcC/hvcC sample format). */
static size_t length_prefixed(uint8_t *out, const struct nal *nals, int n, int lsize)
{
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		for (int b = lsize - 1; b >= 0; b--)
			out[o++] = (uint8_t)(nals[i].len >> (8 * b));
		memcpy(out + o, nals[i].data, nals[i].len);
		o += nals[i].len;
	}
	return o;
}

static void test_h264_annexb(void **state)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_H264, 640, 480);
	/* out-of-band parameter sets too, for the SDP */
	struct nal ps[] = { { h264_sps, sizeof h264_sps }, { h264_pps, sizeof h264_pps } };
	uint8_t ex[64];
	set_extradata(par, ex, annexb(ex, ps, 2));
	struct capture *c = capture_new();
	const uint32_t ssrc = 0xdeadbeef;               /* above INT32_MAX */
	struct packetizer *p = open_pk(par, (AVRational){ 1, 1000 }, -1, ssrc, c);
	assert_int_equal(packetizer_clock_rate(p), 90000);
	assert_int_equal(packetizer_payload_type(p), 96);
	assert_int_equal(c->n, 0);

	static uint8_t idr[5000], slice[3000], au[16384];
	idr[0] = 0x65;                                  /* NRI 3, IDR */
	fill_nal(idr + 1, sizeof idr - 1, 1);
	slice[0] = 0x41;                                /* NRI 2, non-IDR slice */
	fill_nal(slice + 1, sizeof slice - 1, 2);
	struct nal au1[] = { { h264_sps, sizeof h264_sps }, { h264_pps, sizeof h264_pps }, { idr, sizeof idr } };
	struct nal au2[] = { { slice, sizeof slice } };

	write_pkt(p, au, annexb(au, au1, 3), 40, true);
	int f1 = c->n;
	write_pkt(p, au, annexb(au, au2, 1), 80, false);
	int frames[] = { 0, f1, c->n };
	bool key[] = { true, false };
	uint32_t ts[2];
	check_video_stream(c, frames, 2, key, ssrc, 96, ts);
	assert_int_equal(ts[1] - ts[0], 3600);         /* 40 ms at 90 kHz */

	/* frame 1: SPS+PPS aggregated (or single), then the IDR as FU-A */
	struct nal_list got = { 0 };
	h264_depacketize(c, 0, f1, &got);
	check_nals(&got, au1, 3);
	/* 4999 bytes after the NAL header, at most 1400-12-2 per fragment */
	assert_true(got.fu_packets >= (int)((sizeof idr - 1 + RTP_MTU - 15) / (RTP_MTU - 14)));
	assert_int_equal(got.fu_packets + got.agg_packets + got.single_packets, f1);
	/* SPS and PPS are small: not fragmented */
	struct rtp_hdr h;
	parse_rtp(&c->pk[0], &h);
	int t0 = h.pl[0] & 0x1f;
	if (t0 == 24) {
		/* STAP-A: [24][size][SPS][size][PPS] */
		assert_int_equal(h.plen, 1 + 2 + sizeof h264_sps + 2 + sizeof h264_pps);
		assert_int_equal(rd16(h.pl + 1), sizeof h264_sps);
		assert_memory_equal(h.pl + 3, h264_sps, sizeof h264_sps);
		assert_int_equal(rd16(h.pl + 3 + sizeof h264_sps), sizeof h264_pps);
		assert_int_equal(got.agg_packets, 1);
	} else {
		assert_int_equal(t0, 7);
		assert_int_equal(got.single_packets, 2);
	}
	/* the FU-A of the IDR: indicator 28 with the IDR's NRI, header type 5,
	 * S on the first, E on the last */
	int first_fu = t0 == 24 ? 1 : 2;
	for (int i = first_fu; i < f1; i++) {
		parse_rtp(&c->pk[i], &h);
		assert_int_equal(h.pl[0], 0x60 | 28);
		assert_int_equal(h.pl[1] & 0x1f, 5);
		assert_int_equal(!!(h.pl[1] & 0x80), i == first_fu);
		assert_int_equal(!!(h.pl[1] & 0x40), i == f1 - 1);
		/* all fragments but the last fill the packet */
		if (i < f1 - 1)
			assert_int_equal(c->pk[i].len, RTP_MTU);
	}
	nal_list_free(&got);

	/* frame 2: one NAL, 3000 bytes: FU-A with NRI 2, type 1 */
	h264_depacketize(c, f1, c->n, &got);
	check_nals(&got, au2, 1);
	assert_int_equal(got.fu_packets, c->n - f1);
	parse_rtp(&c->pk[f1], &h);
	assert_int_equal(h.pl[0], 0x40 | 28);
	assert_int_equal(h.pl[1], 0x80 | 1);
	nal_list_free(&got);

	/* SDP: dynamic payload type, 90 kHz, mode 1, the parameter sets */
	char sdp[2048], v[256], b64[64];
	get_sdp(p, sdp, sizeof sdp);
	assert_true(strncmp(sdp, "m=video 0 RTP/AVP 96\r\n", 22) == 0);
	assert_true(has_line(sdp, "a=rtpmap:96 H264/90000"));
	assert_true(fmtp_param(sdp, "packetization-mode", v, sizeof v));
	assert_string_equal(v, "1");
	assert_true(fmtp_param(sdp, "profile-level-id", v, sizeof v));
	assert_true(strcasecmp(v, "42c01e") == 0);
	assert_true(fmtp_param(sdp, "sprop-parameter-sets", v, sizeof v));
	char want[128];
	base64(h264_sps, sizeof h264_sps, b64);
	strcpy(want, b64);
	strcat(want, ",");
	base64(h264_pps, sizeof h264_pps, b64);
	strcat(want, b64);
	assert_string_equal(v, want);

	packetizer_close(&p);
	assert_null(p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* Marker bit and key flag with small access units: one packet each. */
static void test_h264_small_frames(void **state)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_H264, 320, 240);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 90000 }, 100, 0x01020304, c);
	assert_int_equal(packetizer_payload_type(p), 100);
	uint8_t slice[200], au[512];
	slice[0] = 0x41;
	fill_nal(slice + 1, sizeof slice - 1, 3);
	struct nal one[] = { { slice, sizeof slice } };
	int frames[6];
	bool key[5];
	for (int f = 0; f < 5; f++) {
		frames[f] = c->n;
		key[f] = f == 0 || f == 3;
		write_pkt(p, au, annexb(au, one, 1), 3000 * f, key[f]);
		assert_int_equal(c->n, frames[f] + 1);  /* a single NAL unit packet */
	}
	frames[5] = c->n;
	uint32_t ts[5];
	check_video_stream(c, frames, 5, key, 0x01020304, 100, ts);
	for (int f = 1; f < 5; f++)
		assert_int_equal(ts[f] - ts[f - 1], 3000);
	for (int f = 0; f < 5; f++) {
		assert_int_equal(c->pk[f].len, 12 + sizeof slice);
		assert_memory_equal(c->pk[f].data + 12, slice, sizeof slice);
	}
	char sdp[1024];
	get_sdp(p, sdp, sizeof sdp);
	assert_true(strncmp(sdp, "m=video 0 RTP/AVP 100\r\n", 23) == 0);
	assert_true(has_line(sdp, "a=rtpmap:100 H264/90000"));
	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* RFC 6184 §5.7.1: the NRI of a STAP-A is the highest NRI of the NAL units
 * it carries (SPS and PPS have NRI 3). */
static void test_h264_stap_a_nri(void **state)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_H264, 640, 480);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 90000 }, -1, 1, c);
	static uint8_t idr[3000], au[4096];
	idr[0] = 0x65;
	fill_nal(idr + 1, sizeof idr - 1, 4);
	struct nal au1[] = { { h264_sps, sizeof h264_sps }, { h264_pps, sizeof h264_pps }, { idr, sizeof idr } };
	write_pkt(p, au, annexb(au, au1, 3), 0, true);
	packetizer_close(&p);
	avcodec_parameters_free(&par);
	assert_true(c->n >= 2);
	char msg[128] = "";
	int stap = 0;
	for (int i = 0; i < c->n; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		if ((h.pl[0] & 0x1f) != 24)
			continue;
		stap++;
		int nri = 0;
		for (size_t off = 1; off + 2 < h.plen; off += 2 + rd16(h.pl + off))
			if ((h.pl[off + 2] & 0x60) > nri)
				nri = h.pl[off + 2] & 0x60;
		if ((h.pl[0] & 0x60) != nri && !msg[0])
			snprintf(msg, sizeof msg, "STAP-A indicator 0x%02x: NRI %d, the NAL units it carries have NRI %d",
				 h.pl[0], (h.pl[0] & 0x60) >> 5, nri >> 5);
	}
	capture_delete(c);
	assert_int_equal(stap, 1);
	if (msg[0])
		fail_msg("%s", msg);
}

/* avcC extradata (as in mp4 files): samples are length-prefixed NAL units. */
static void run_h264_avcc(int lsize)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_H264, 640, 480);
	uint8_t ex[64];
	size_t e = 0;
	ex[e++] = 1;                                    /* configurationVersion */
	ex[e++] = h264_sps[1];                          /* profile */
	ex[e++] = h264_sps[2];                          /* compatibility */
	ex[e++] = h264_sps[3];                          /* level */
	ex[e++] = (uint8_t)(0xfc | (lsize - 1));        /* lengthSizeMinusOne */
	ex[e++] = 0xe1;                                 /* one SPS */
	ex[e++] = 0;
	ex[e++] = sizeof h264_sps;
	memcpy(ex + e, h264_sps, sizeof h264_sps);
	e += sizeof h264_sps;
	ex[e++] = 1;                                    /* one PPS */
	ex[e++] = 0;
	ex[e++] = sizeof h264_pps;
	memcpy(ex + e, h264_pps, sizeof h264_pps);
	e += sizeof h264_pps;
	set_extradata(par, ex, e);

	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 25 }, -1, 0x0a0b0c0d, c);
	/* an access unit delimiter, an SEI, a big IDR slice; then a P frame
	 * whose size needs two bytes (and a zero byte) in the length */
	static uint8_t aud[] = { 0x09, 0xf0 };
	static uint8_t sei[24], idr[5000], pf[700], au[16384];
	sei[0] = 0x06;
	fill_nal(sei + 1, sizeof sei - 1, 5);
	idr[0] = 0x65;
	fill_nal(idr + 1, sizeof idr - 1, 6);
	pf[0] = 0x21;                                   /* NRI 1, non-IDR */
	fill_nal(pf + 1, sizeof pf - 1, 7);
	struct nal au1[] = { { aud, sizeof aud }, { sei, sizeof sei }, { idr, sizeof idr } };
	struct nal au2[] = { { aud, sizeof aud }, { pf, sizeof pf } };
	write_pkt(p, au, length_prefixed(au, au1, 3, lsize), 0, true);
	int f1 = c->n;
	write_pkt(p, au, length_prefixed(au, au2, 2, lsize), 1, false);
	int frames[] = { 0, f1, c->n };
	bool key[] = { true, false };
	uint32_t ts[2];
	check_video_stream(c, frames, 2, key, 0x0a0b0c0d, 96, ts);
	assert_int_equal(ts[1] - ts[0], 3600);         /* 1/25 s */

	struct nal_list got = { 0 };
	h264_depacketize(c, 0, f1, &got);
	check_nals(&got, au1, 3);                       /* no length prefix left in */
	assert_true(got.fu_packets >= 4);
	nal_list_free(&got);
	h264_depacketize(c, f1, c->n, &got);
	check_nals(&got, au2, 2);
	assert_int_equal(got.fu_packets, 0);
	nal_list_free(&got);

	/* the SDP has the parameter sets of the avcC, in base64 */
	char sdp[2048], v[256], b64[64];
	get_sdp(p, sdp, sizeof sdp);
	assert_true(fmtp_param(sdp, "sprop-parameter-sets", v, sizeof v));
	base64(h264_sps, sizeof h264_sps, b64);
	assert_true(strncmp(v, b64, strlen(b64)) == 0);
	assert_true(fmtp_param(sdp, "profile-level-id", v, sizeof v));
	assert_true(strcasecmp(v, "42c01e") == 0);

	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

static void test_h264_avcc(void **state)
{
	run_h264_avcc(4);
}

static void test_h264_avcc_2byte_lengths(void **state)
{
	run_h264_avcc(2);
}

/* ------------------------------------------------------------ H.265 */

/* RFC 7798 receiver (no DONL: sprop-max-don-diff is 0), with the checks of
 * the structures: AP (48) with 16-bit sizes, FU (49) with S/E and FuType;
 * the payload header of an AP or FU has F = 0 and the LayerId and TID of
 * the NAL units it carries (the lowest of them for an AP). */
static void h265_depacketize(const struct capture *c, int from, int to, struct nal_list *out)
{
	uint8_t *fu = NULL;
	size_t fu_len = 0;
	int fu_type = -1;
	uint8_t fu_hdr[2] = { 0, 0 };
	for (int i = from; i < to; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		const uint8_t *p = h.pl;
		size_t n = h.plen;
		assert_true(n >= 3);
		assert_int_equal(p[0] & 0x80, 0);       /* F */
		int type = p[0] >> 1 & 0x3f;
		int tid = p[1] & 7;
		int layer = (p[0] & 1) << 5 | p[1] >> 3;
		assert_true(tid > 0);
		if (type != 49)
			assert_null(fu);
		if (type < 48) {
			nal_list_add(out, p, n);
			out->single_packets++;
		} else if (type == 48) {
			size_t off = 2;
			int count = 0, min_tid = 7, min_layer = 63;
			while (off < n) {
				assert_true(off + 2 <= n);
				size_t sz = rd16(p + off);
				off += 2;
				assert_true(sz >= 2);
				assert_true(off + sz <= n);
				nal_list_add(out, p + off, sz);
				int t = p[off + 1] & 7, l = (p[off] & 1) << 5 | p[off + 1] >> 3;
				if (t < min_tid)
					min_tid = t;
				if (l < min_layer)
					min_layer = l;
				off += sz;
				count++;
			}
			assert_int_equal(off, n);
			assert_true(count >= 2);
			assert_int_equal(tid, min_tid);
			assert_int_equal(layer, min_layer);
			out->agg_packets++;
		} else if (type == 49) {
			uint8_t fh = p[2];
			bool s = fh & 0x80, e = fh & 0x40;
			assert_false(s && e);
			assert_true(n > 3);
			if (s) {
				assert_null(fu);
				fu_type = fh & 0x3f;
				/* the NAL unit header: F, LayerId, TID from the
				 * payload header, the type from the FU header */
				fu_hdr[0] = (uint8_t)((p[0] & 0x81) | fu_type << 1);
				fu_hdr[1] = p[1];
				fu = malloc(2);
				assert_non_null(fu);
				memcpy(fu, fu_hdr, 2);
				fu_len = 2;
			} else {
				assert_non_null(fu);
				assert_int_equal(fh & 0x3f, fu_type);
				/* same payload header on every fragment */
				assert_int_equal(p[0] & 0x81, fu_hdr[0] & 0x81);
				assert_int_equal(p[1], fu_hdr[1]);
			}
			uint8_t *nb = realloc(fu, fu_len + n - 3);
			assert_non_null(nb);
			fu = nb;
			memcpy(fu + fu_len, p + 3, n - 3);
			fu_len += n - 3;
			out->fu_packets++;
			if (e) {
				nal_list_add(out, fu, fu_len);
				free(fu);
				fu = NULL;
			}
		} else {
			fail_msg("unexpected H.265 payload type %d", type);
		}
	}
	assert_null(fu);
}

static void test_h265(void **state)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_HEVC, 1280, 720);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 90000 }, -1, 0x11111111, c);
	assert_int_equal(packetizer_clock_rate(p), 90000);
	assert_int_equal(packetizer_payload_type(p), 96);

	/* NAL unit header: F=0, type, LayerId=0, TID=1 (nuh_temporal_id_plus1) */
	static uint8_t vps[24], sps[40], pps[8], idr[6000], trail[2500], au[16384];
	vps[0] = 32 << 1, vps[1] = 1;
	fill_nal(vps + 2, sizeof vps - 2, 8);
	sps[0] = 33 << 1, sps[1] = 1;
	fill_nal(sps + 2, sizeof sps - 2, 9);
	pps[0] = 34 << 1, pps[1] = 1;
	fill_nal(pps + 2, sizeof pps - 2, 10);
	idr[0] = 19 << 1, idr[1] = 1;                   /* IDR_W_RADL */
	fill_nal(idr + 2, sizeof idr - 2, 11);
	trail[0] = 1 << 1, trail[1] = 1;                /* TRAIL_R */
	fill_nal(trail + 2, sizeof trail - 2, 12);
	struct nal au1[] = { { vps, sizeof vps }, { sps, sizeof sps }, { pps, sizeof pps }, { idr, sizeof idr } };
	struct nal au2[] = { { trail, sizeof trail } };
	write_pkt(p, au, annexb(au, au1, 4), 0, true);
	int f1 = c->n;
	write_pkt(p, au, annexb(au, au2, 1), 3003, false);
	int frames[] = { 0, f1, c->n };
	bool key[] = { true, false };
	uint32_t ts[2];
	check_video_stream(c, frames, 2, key, 0x11111111, 96, ts);
	assert_int_equal(ts[1] - ts[0], 3003);

	struct nal_list got = { 0 };
	h265_depacketize(c, 0, f1, &got);
	check_nals(&got, au1, 4);
	/* 5998 bytes after the NAL header, at most 1400-12-3 per fragment */
	assert_true(got.fu_packets >= 5);
	nal_list_free(&got);

	/* VPS/SPS/PPS: one AP, or three single NAL unit packets */
	struct rtp_hdr h;
	parse_rtp(&c->pk[0], &h);
	int t0 = h.pl[0] >> 1 & 0x3f;
	int first_fu;
	if (t0 == 48) {
		assert_int_equal(h.pl[1], 1);           /* LayerId 0, TID 1 */
		assert_int_equal(h.plen, 2 + 2 + sizeof vps + 2 + sizeof sps + 2 + sizeof pps);
		assert_int_equal(rd16(h.pl + 2), sizeof vps);
		assert_memory_equal(h.pl + 4, vps, sizeof vps);
		first_fu = 1;
	} else {
		assert_int_equal(t0, 32);
		first_fu = 3;
	}
	/* the IDR as FU: payload header type 49 with the NAL's LayerId/TID,
	 * FU header S/E and FuType 19 */
	for (int i = first_fu; i < f1; i++) {
		parse_rtp(&c->pk[i], &h);
		assert_int_equal(h.pl[0], 49 << 1);
		assert_int_equal(h.pl[1], 1);
		assert_int_equal(h.pl[2] & 0x3f, 19);
		assert_int_equal(!!(h.pl[2] & 0x80), i == first_fu);
		assert_int_equal(!!(h.pl[2] & 0x40), i == f1 - 1);
		if (i < f1 - 1)
			assert_int_equal(c->pk[i].len, RTP_MTU);
	}

	h265_depacketize(c, f1, c->n, &got);
	check_nals(&got, au2, 1);
	assert_int_equal(got.fu_packets, c->n - f1);
	nal_list_free(&got);

	char sdp[2048];
	get_sdp(p, sdp, sizeof sdp);
	assert_true(strncmp(sdp, "m=video 0 RTP/AVP 96\r\n", 22) == 0);
	assert_true(has_line(sdp, "a=rtpmap:96 H265/90000"));
	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* RFC 7798 §4.4.3: "The fields F, LayerId, and TID MUST be equal to the
 * fields F, LayerId, and TID, respectively, of the fragmented NAL unit."
 * A stream with temporal sub-layers: a TRAIL_N picture at TemporalId 2. */
static void test_h265_fu_keeps_tid(void **state)
{
	AVCodecParameters *par = video_par(AV_CODEC_ID_HEVC, 1280, 720);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 90000 }, -1, 2, c);
	static uint8_t trail[4000], au[4200];
	trail[0] = 0 << 1, trail[1] = 3;                /* TRAIL_N, LayerId 0, TID 3 */
	fill_nal(trail + 2, sizeof trail - 2, 13);
	struct nal one[] = { { trail, sizeof trail } };
	write_pkt(p, au, annexb(au, one, 1), 0, false);
	packetizer_close(&p);
	avcodec_parameters_free(&par);
	assert_true(c->n >= 3);
	char msg[128] = "";
	for (int i = 0; i < c->n; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		assert_int_equal(h.pl[0] >> 1 & 0x3f, 49);
		assert_int_equal(h.pl[2] & 0x3f, 0);    /* FuType: TRAIL_N */
		/* F and LayerId's high bit, then LayerId's low bits and TID */
		if (((h.pl[0] & 0x81) != (trail[0] & 0x81) || h.pl[1] != trail[1]) && !msg[0])
			snprintf(msg, sizeof msg, "FU payload header %02x %02x: LayerId %d TID %d, "
				 "the NAL unit has LayerId %d TID %d",
				 h.pl[0], h.pl[1], (h.pl[0] & 1) << 5 | h.pl[1] >> 3, h.pl[1] & 7,
				 (trail[0] & 1) << 5 | trail[1] >> 3, trail[1] & 7);
	}
	capture_delete(c);
	if (msg[0])
		fail_msg("%s", msg);
}

/* ------------------------------------------------------------ AAC */

static struct packetizer *open_aac(struct capture *c, AVCodecParameters **parp)
{
	AVCodecParameters *par = audio_par(AV_CODEC_ID_AAC, 44100, 2);
	static const uint8_t asc[] = { 0x12, 0x10 };    /* AAC-LC, 44.1 kHz, stereo */
	set_extradata(par, asc, sizeof asc);
	par->frame_size = 1024;
	*parp = par;
	return open_pk(par, (AVRational){ 1, 44100 }, -1, 0xa0a0a0a0, c);
}

/* RFC 3640 AAC-hbr: AU-headers-length (bits), then per AU a 13-bit size and
 * a 3-bit index (delta), then the AUs. */
static void check_aac_packet(const struct rtp_pkt *k, int pt, const uint8_t *frame, size_t len)
{
	struct rtp_hdr h;
	parse_rtp(k, &h);
	assert_int_equal(h.pt, pt);
	assert_int_equal(h.ssrc, 0xa0a0a0a0);
	assert_int_equal(h.marker, 1);
	assert_int_equal(h.plen, 2 + 2 + len);
	assert_int_equal(rd16(h.pl), 16);               /* one AU header of 16 bits */
	assert_int_equal(rd16(h.pl + 2) >> 3, len);     /* AU-size */
	assert_int_equal(rd16(h.pl + 2) & 7, 0);        /* AU-Index */
	assert_memory_equal(h.pl + 4, frame, len);
}

static void test_aac(void **state)
{
	struct capture *c = capture_new();
	AVCodecParameters *par;
	struct packetizer *p = open_aac(c, &par);
	assert_int_equal(packetizer_clock_rate(p), 44100);
	/* dynamic: FFmpeg picks 96 for video, 97 for audio */
	const int pt = packetizer_payload_type(p);
	assert_true(pt >= 96 && pt <= 127);

	static uint8_t f[4][300];
	for (int i = 0; i < 4; i++)
		fill_nal(f[i], sizeof f[i], 20 + (unsigned)i);
	const size_t lens[] = { 300, 200, 250, 10 };
	write_pkt(p, f[0], lens[0], 0, true);
	/* every frame goes out at once: none waits for the next */
	assert_int_equal(c->n, 1);
	check_aac_packet(&c->pk[0], pt, f[0], 300);
	assert_true(c->pk[0].key);                      /* any audio frame is a start */
	write_pkt(p, f[1], lens[1], 1024, true);
	write_pkt(p, f[2], lens[2], 2048, true);
	write_pkt(p, f[3], lens[3], 3072, true);
	assert_int_equal(c->n, 4);
	uint32_t ts0 = 0;
	for (int i = 0; i < 4; i++) {
		check_aac_packet(&c->pk[i], pt, f[i], lens[i]);
		assert_true(c->pk[i].key);
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		if (i == 0)
			ts0 = h.ts;
		assert_int_equal(h.ts - ts0, 1024u * (unsigned)i);
		assert_int_equal(rd16(c->pk[i].data + 2), (uint16_t)(rd16(c->pk[0].data + 2) + i));
	}

	char sdp[2048], v[64], want[64];
	get_sdp(p, sdp, sizeof sdp);
	snprintf(want, sizeof want, "m=audio 0 RTP/AVP %d\r\n", pt);
	assert_true(strncmp(sdp, want, strlen(want)) == 0);
	snprintf(want, sizeof want, "a=rtpmap:%d MPEG4-GENERIC/44100/2", pt);
	assert_true(has_line(sdp, want));
	snprintf(want, sizeof want, "a=fmtp:%d ", pt);
	assert_non_null(strstr(sdp, want));
	assert_true(fmtp_param(sdp, "config", v, sizeof v));
	assert_true(strcasecmp(v, "1210") == 0);
	assert_true(fmtp_param(sdp, "sizelength", v, sizeof v));
	assert_string_equal(v, "13");
	assert_true(fmtp_param(sdp, "indexlength", v, sizeof v));
	assert_string_equal(v, "3");
	assert_true(fmtp_param(sdp, "indexdeltalength", v, sizeof v));
	assert_string_equal(v, "3");
	assert_true(fmtp_param(sdp, "mode", v, sizeof v));
	assert_string_equal(v, "AAC-hbr");

	/* closing drops what is still held, without calling back */
	int n = c->n;
	packetizer_close(&p);
	assert_int_equal(c->n, n);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* packetizer.h: packetizer_flush() "emits what the muxer still holds (AAC
 * frames it was aggregating)": the last frame of a stream is not lost. */
static void test_aac_flush(void **state)
{
	struct capture *c = capture_new();
	AVCodecParameters *par;
	struct packetizer *p = open_aac(c, &par);
	uint8_t f0[300], f1[180];
	fill_nal(f0, sizeof f0, 30);
	fill_nal(f1, sizeof f1, 31);
	write_pkt(p, f0, sizeof f0, 0, true);
	write_pkt(p, f1, sizeof f1, 1024, true);
	packetizer_flush(p);
	int n = c->n;
	if (n != 2) {
		packetizer_close(&p);
		capture_delete(c);
		avcodec_parameters_free(&par);
		fail_msg("after packetizer_flush: %d RTP packet(s), want 2 (the last AAC frame is still held)", n);
	}
	check_aac_packet(&c->pk[1], packetizer_payload_type(p), f1, sizeof f1);
	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* ------------------------------------------------------------ MJPEG */

/* One 64x48 baseline JPEG (standard Huffman tables), noisy enough to need
 * several RTP packets. */
static AVPacket *encode_jpeg(AVCodecParameters *par)
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
	assert_non_null(codec);
	AVCodecContext *ctx = avcodec_alloc_context3(codec);
	assert_non_null(ctx);
	ctx->width = 64;
	ctx->height = 48;
	ctx->pix_fmt = AV_PIX_FMT_YUVJ420P;
	ctx->time_base = (AVRational){ 1, 25 };
	ctx->flags |= AV_CODEC_FLAG_QSCALE;
	assert_int_equal(av_opt_set(ctx->priv_data, "huffman", "default", 0), 0);
	assert_int_equal(avcodec_open2(ctx, codec, NULL), 0);

	AVFrame *fr = av_frame_alloc();
	assert_non_null(fr);
	fr->format = ctx->pix_fmt;
	fr->width = ctx->width;
	fr->height = ctx->height;
	assert_int_equal(av_frame_get_buffer(fr, 0), 0);
	uint32_t x = 12345;
	for (int pl = 0; pl < 3; pl++) {
		int w = pl ? 32 : 64, h = pl ? 24 : 48;
		for (int y = 0; y < h; y++)
			for (int i = 0; i < w; i++) {
				x = x * 1103515245 + 12345;
				fr->data[pl][y * fr->linesize[pl] + i] = (uint8_t)(x >> 24);
			}
	}
	fr->pts = 0;
	fr->quality = FF_QP2LAMBDA * 2;
	assert_int_equal(avcodec_send_frame(ctx, fr), 0);
	assert_int_equal(avcodec_send_frame(ctx, NULL), 0);
	AVPacket *pkt = av_packet_alloc();
	assert_non_null(pkt);
	assert_int_equal(avcodec_receive_packet(ctx, pkt), 0);
	assert_int_equal(avcodec_parameters_from_context(par, ctx), 0);
	av_frame_free(&fr);
	avcodec_free_context(&ctx);
	return pkt;
}

/* Offset of the byte after the JPEG marker segment m (FF m len ...), or 0. */
static size_t jpeg_segment(const uint8_t *j, size_t len, uint8_t m, size_t *seg_len)
{
	size_t i = 2;                                   /* after SOI */
	while (i + 4 <= len && j[i] == 0xff) {
		size_t l = rd16(j + i + 2);
		if (j[i + 1] == m) {
			*seg_len = l;
			return i + 4;
		}
		if (j[i + 1] == 0xda)
			break;
		i += 2 + l;
	}
	return 0;
}

/* The 8-bit quantization tables of all DQT segments, in order; their count. */
static size_t jpeg_qtables(const uint8_t *j, size_t len, uint8_t *out)
{
	size_t i = 2, n = 0;
	while (i + 4 <= len && j[i] == 0xff && j[i + 1] != 0xda) {
		size_t l = rd16(j + i + 2);
		assert_true(i + 2 + l <= len);
		if (j[i + 1] == 0xdb) {
			for (size_t at = i + 4; at < i + 2 + l; at += 65) {
				assert_int_equal(j[at] >> 4, 0);       /* 8-bit precision */
				assert_true(n < 4);
				memcpy(out + 64 * n++, j + at + 1, 64);
			}
		}
		i += 2 + l;
	}
	return n;
}

static void test_mjpeg(void **state)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	assert_non_null(par);
	AVPacket *jpg = encode_jpeg(par);
	const uint8_t *j = jpg->data;
	size_t jl = (size_t)jpg->size;
	assert_true(j[0] == 0xff && j[1] == 0xd8);
	assert_true(j[jl - 2] == 0xff && j[jl - 1] == 0xd9);
	size_t sl;
	size_t sos = jpeg_segment(j, jl, 0xda, &sl);
	assert_true(sos > 0);
	size_t scan = sos - 2 + sl;                     /* entropy-coded data */
	size_t scan_len = jl - 2 - scan;                /* up to EOI */
	assert_true(scan_len > 2 * (RTP_MTU - 12 - 8)); /* several packets */

	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 25 }, -1, 0x26262626, c);
	assert_int_equal(packetizer_payload_type(p), 26);
	assert_int_equal(packetizer_clock_rate(p), 90000);
	AVPacket *in = av_packet_clone(jpg);
	assert_non_null(in);
	in->pts = in->dts = 3;
	in->flags |= AV_PKT_FLAG_KEY;
	assert_int_equal(packetizer_write(p, in), 0);
	av_packet_free(&in);
	assert_true(c->n >= 3);
	int frames[] = { 0, c->n };
	bool key[] = { true };
	check_video_stream(c, frames, 1, key, 0x26262626, 26, NULL);

	/* RFC 2435 §3.1: type-specific, fragment offset (24 bits), type, Q,
	 * width/8, height/8; then (Q >= 128, first packet) the quantization
	 * table header and tables */
	uint8_t *re = malloc(scan_len);
	assert_non_null(re);
	size_t off = 0;
	int q0 = -1;
	for (int i = 0; i < c->n; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		const uint8_t *pl = h.pl;
		assert_true(h.plen > 8);
		assert_int_equal(pl[0], 0);                     /* type-specific */
		size_t fo = (size_t)pl[1] << 16 | (size_t)pl[2] << 8 | pl[3];
		assert_int_equal(fo, off);                      /* increasing, no gap */
		assert_int_equal(pl[4], 1);                     /* 4:2:0, no restart markers */
		assert_int_equal(pl[6], 64 / 8);
		assert_int_equal(pl[7], 48 / 8);
		int q = pl[5];
		assert_true((q >= 1 && q <= 99) || q >= 128);
		if (i == 0)
			q0 = q;
		assert_int_equal(q, q0);                        /* same Q on every fragment */
		size_t hl = 8;
		if (i == 0 && q >= 128) {
			/* MBZ, precision (8-bit tables), length */
			assert_int_equal(pl[8], 0);
			assert_int_equal(pl[9], 0);
			size_t ql = rd16(pl + 10);
			/* the tables of the JPEG's DQT segment(s), as they are
			 * there (one when chroma uses the luma table, or two) */
			uint8_t tables[4 * 64];
			size_t nt = jpeg_qtables(j, jl, tables);
			assert_true(nt >= 1 && nt <= 2);
			assert_int_equal(ql, nt * 64);
			assert_true(h.plen >= 12 + ql);
			assert_memory_equal(pl + 12, tables, ql);
			hl += 4 + ql;
		}
		assert_true(off + h.plen - hl <= scan_len);
		memcpy(re + off, pl + hl, h.plen - hl);
		off += h.plen - hl;
	}
	/* the fragments put together are the scan data of the JPEG */
	assert_int_equal(off, scan_len);
	assert_memory_equal(re, j + scan, scan_len);
	free(re);

	char sdp[1024];
	get_sdp(p, sdp, sizeof sdp);
	assert_true(strncmp(sdp, "m=video 0 RTP/AVP 26\r\n", 22) == 0);
	packetizer_close(&p);
	av_packet_free(&jpg);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* ------------------------------------------------------------ audio, static PTs */

struct audio_case {
	enum AVCodecID id;
	int rate, channels;
	int pt;                         /* -1: dynamic (96-127) */
	uint32_t clock;
	const char *rtpmap;             /* encoding/clock[/channels]; NULL: no rtpmap expected */
};

static void run_audio(const struct audio_case *a, const uint8_t *frame, size_t len, int64_t step)
{
	AVCodecParameters *par = audio_par(a->id, a->rate, a->channels);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, a->rate }, -1, 0x0d0e0a0d, c);
	const int pt = packetizer_payload_type(p);
	if (a->pt >= 0)
		assert_int_equal(pt, a->pt);
	else
		assert_true(pt >= 96 && pt <= 127);
	assert_int_equal(packetizer_clock_rate(p), a->clock);
	char sdp[1024], want[128];
	get_sdp(p, sdp, sizeof sdp);
	snprintf(want, sizeof want, "m=audio 0 RTP/AVP %d\r\n", pt);
	assert_true(strncmp(sdp, want, strlen(want)) == 0);
	if (a->rtpmap) {
		snprintf(want, sizeof want, "a=rtpmap:%d %s", pt, a->rtpmap);
		assert_true(has_line(sdp, want));
	}

	write_pkt(p, frame, len, 0, true);
	write_pkt(p, frame, len, step, true);
	write_pkt(p, frame, len, 2 * step, true);
	assert_true(c->n >= 2);
	struct rtp_hdr h0;
	parse_rtp(&c->pk[0], &h0);
	for (int i = 0; i < c->n; i++) {
		struct rtp_hdr h;
		parse_rtp(&c->pk[i], &h);
		assert_int_equal(h.pt, pt);
		assert_int_equal(h.ssrc, 0x0d0e0a0d);
		assert_int_equal(h.seq, (uint16_t)(h0.seq + i));
		assert_true(c->pk[i].key);
		assert_int_equal(h.plen, len);
		assert_memory_equal(h.pl, frame, len);
		/* RTP time advances by the frame duration on the RTP clock */
		uint32_t dt = (uint32_t)((int64_t)i * step * a->clock / a->rate);
		assert_int_equal(h.ts - h0.ts, dt);
	}
	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

static void test_pcmu(void **state)
{
	uint8_t f[160];
	fill_nal(f, sizeof f, 40);
	const struct audio_case a = { AV_CODEC_ID_PCM_MULAW, 8000, 1, 0, 8000, NULL };
	run_audio(&a, f, sizeof f, 160);
}

static void test_pcma(void **state)
{
	uint8_t f[160];
	fill_nal(f, sizeof f, 41);
	const struct audio_case a = { AV_CODEC_ID_PCM_ALAW, 8000, 1, 8, 8000, NULL };
	run_audio(&a, f, sizeof f, 160);
}

/* RFC 3551 §4.5.2: G.722 samples at 16 kHz but its RTP clock is 8000 Hz. */
static void test_g722(void **state)
{
	uint8_t f[160];                                 /* 20 ms: 320 samples */
	fill_nal(f, sizeof f, 42);
	const struct audio_case a = { AV_CODEC_ID_ADPCM_G722, 16000, 1, 9, 8000, NULL };
	run_audio(&a, f, sizeof f, 320);
}

/* RFC 7587: always opus/48000/2 in the rtpmap, clock 48 kHz. */
static void test_opus(void **state)
{
	uint8_t f[80];
	fill_nal(f, sizeof f, 43);
	f[0] = 0xfc;                                    /* TOC: CELT FB 20 ms, stereo, one frame */
	const struct audio_case st = { AV_CODEC_ID_OPUS, 48000, 2, -1, 48000, "opus/48000/2" };
	run_audio(&st, f, sizeof f, 960);
	const struct audio_case mono = { AV_CODEC_ID_OPUS, 48000, 1, -1, 48000, "opus/48000/2" };
	f[0] = 0xf8;                                    /* mono */
	run_audio(&mono, f, sizeof f, 960);
}

/* ------------------------------------------------------------ SDP, errors */

static void test_sdp_buffer(void **state)
{
	AVCodecParameters *par = audio_par(AV_CODEC_ID_OPUS, 48000, 2);
	struct capture *c = capture_new();
	struct packetizer *p = open_pk(par, (AVRational){ 1, 48000 }, 111, 5, c);
	assert_int_equal(packetizer_payload_type(p), 111);
	char sdp[1024];
	int n = packetizer_sdp(p, sdp, sizeof sdp);
	assert_true(n > 0);
	assert_true(has_line(sdp, "a=rtpmap:111 opus/48000/2"));
	assert_true(strncmp(sdp, "m=audio 0 RTP/AVP 111\r\n", 23) == 0);
	/* just enough room (the terminating zero included), then one less */
	char *exact = malloc((size_t)n + 1);
	assert_non_null(exact);
	assert_int_equal(packetizer_sdp(p, exact, (size_t)n + 1), n);
	assert_string_equal(exact, sdp);
	assert_int_equal(packetizer_sdp(p, exact, (size_t)n), -ENOSPC);
	free(exact);
	char small[8];
	assert_int_equal(packetizer_sdp(p, small, sizeof small), -ENOSPC);
	packetizer_close(&p);
	capture_delete(c);
	avcodec_parameters_free(&par);
}

/* Every codec's SDP section: no a=control, no c= (also with a PT given). */
static void test_sdp_no_control_no_c(void **state)
{
	static const enum AVCodecID ids[] = { AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_MJPEG,
					      AV_CODEC_ID_MPEG4, AV_CODEC_ID_AAC, AV_CODEC_ID_PCM_MULAW,
					      AV_CODEC_ID_PCM_ALAW, AV_CODEC_ID_ADPCM_G722, AV_CODEC_ID_OPUS };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		for (int pt = -1; pt <= 97; pt += 98) {
			const AVCodecDescriptor *d = avcodec_descriptor_get(ids[i]);
			assert_non_null(d);
			AVCodecParameters *par;
			if (d->type == AVMEDIA_TYPE_VIDEO) {
				par = video_par(ids[i], 64, 48);
				if (ids[i] == AV_CODEC_ID_MJPEG)
					par->format = AV_PIX_FMT_YUVJ420P;
			} else {
				int rate = ids[i] == AV_CODEC_ID_ADPCM_G722 ? 16000 :
					   ids[i] == AV_CODEC_ID_OPUS ? 48000 :
					   ids[i] == AV_CODEC_ID_AAC ? 48000 : 8000;
				par = audio_par(ids[i], rate, 1);
				if (ids[i] == AV_CODEC_ID_AAC) {
					static const uint8_t asc[] = { 0x11, 0x88 };
					set_extradata(par, asc, sizeof asc);
				}
			}
			struct capture *c = capture_new();
			struct packetizer *p = open_pk(par, (AVRational){ 1, 90000 }, pt, 1, c);
			char sdp[2048];
			get_sdp(p, sdp, sizeof sdp);
			if (pt >= 0)
				assert_int_equal(packetizer_payload_type(p), pt);
			packetizer_close(&p);
			capture_delete(c);
			avcodec_parameters_free(&par);
		}
	}
}

static void test_open_errors(void **state)
{
	/* a codec RTP cannot carry */
	AVCodecParameters *par = audio_par(AV_CODEC_ID_WMAV2, 44100, 2);
	struct capture *c = capture_new();
	struct packetizer *p = NULL;
	char err[256] = "";
	int r = packetizer_open(&p, par, (AVRational){ 1, 44100 }, -1, 1, on_rtp, c, err, sizeof err);
	assert_true(r < 0);
	assert_null(p);
	assert_non_null(strstr(err, "wmav2"));
	assert_int_equal(c->n, 0);
	/* no room for the message: still an error, nothing written */
	r = packetizer_open(&p, par, (AVRational){ 1, 44100 }, -1, 1, on_rtp, c, err, 0);
	assert_true(r < 0);
	assert_null(p);
	avcodec_parameters_free(&par);

	/* close is idempotent */
	packetizer_close(&p);
	assert_null(p);
	capture_delete(c);
}

int main(void)
{
	av_log_set_level(AV_LOG_QUIET);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_h264_annexb),
		cmocka_unit_test(test_h264_small_frames),
		cmocka_unit_test(test_h264_stap_a_nri),
		cmocka_unit_test(test_h264_avcc),
		cmocka_unit_test(test_h264_avcc_2byte_lengths),
		cmocka_unit_test(test_h265),
		cmocka_unit_test(test_h265_fu_keeps_tid),
		cmocka_unit_test(test_aac),
		cmocka_unit_test(test_aac_flush),
		cmocka_unit_test(test_mjpeg),
		cmocka_unit_test(test_pcmu),
		cmocka_unit_test(test_pcma),
		cmocka_unit_test(test_g722),
		cmocka_unit_test(test_opus),
		cmocka_unit_test(test_sdp_buffer),
		cmocka_unit_test(test_sdp_no_control_no_c),
		cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
