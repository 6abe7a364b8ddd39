/* packetizer.c — see packetizer.h. */
#include "worker/packetizer.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <libavformat/avformat.h>
#include <libavutil/opt.h>

struct packetizer {
	AVFormatContext *mux;
	AVIOContext *pb;
	uint8_t *iobuf;
	AVRational in_tb;
	packetizer_fn fn;
	void *arg;
	bool key_pending;       /* the next packet out starts a key frame */
	bool is_video;
	AVPacket *pkt;
	bool header_written;
	enum AVCodecID codec;
	/* AAC (RFC 3640) is packetized here, not by the muxer, which holds each
	 * frame until the next one arrives and never sends the last. */
	bool own_aac;
	uint8_t pt;
	uint32_t ssrc;
	uint16_t seq;
	uint32_t ts_base;
	/* H.265: headers of the NAL units of the access unit being sent, in
	 * order, so fragments and aggregates get the right LayerId/TID. */
	uint8_t nal_hdr[64][2];
	int nnal, nal_idx;
	char sdp[4096];
};

static void packetizer_discard(void *arg, const uint8_t *rtp, size_t len, bool key)
{
}

/* RFC 6184 §5.7.1: a STAP-A's NRI is the highest NRI of the NAL units it
 * carries (FFmpeg 5.1 writes 0). */
static void h264_fix_stap_nri(uint8_t *pl, size_t len)
{
	if (len < 1 || (pl[0] & 0x1f) != 24)
		return;
	uint8_t nri = 0;
	for (size_t off = 1; off + 2 < len;) {
		size_t n = (size_t)pl[off] << 8 | pl[off + 1];
		if (n == 0 || off + 2 + n > len)
			break;
		if ((pl[off + 2] & 0x60) > nri)
			nri = pl[off + 2] & 0x60;
		off += 2 + n;
	}
	pl[0] = (uint8_t)((pl[0] & 0x9f) | nri);
}

/* RFC 7798 §4.4.2-4.4.3: an AP carries the lowest LayerId and TID of its
 * NAL units, an FU those of the NAL unit it fragments (FFmpeg 5.1 writes
 * LayerId 0, TID 1). */
static void h265_fix_headers(struct packetizer *p, uint8_t *pl, size_t len)
{
	if (len < 3)
		return;
	int type = pl[0] >> 1 & 0x3f;
	if (type == 48) {
		int layer = 63, tid = 7;
		for (size_t off = 2; off + 3 < len;) {
			size_t n = (size_t)pl[off] << 8 | pl[off + 1];
			if (n < 2 || off + 2 + n > len)
				break;
			const uint8_t *h = pl + off + 2;
			int l = (h[0] & 1) << 5 | h[1] >> 3, t = h[1] & 7;
			layer = l < layer ? l : layer;
			tid = t < tid ? t : tid;
			off += 2 + n;
			p->nal_idx++;
		}
		if (tid >= 1) {
			pl[0] = (uint8_t)((pl[0] & 0xfe) | (layer >> 5));
			pl[1] = (uint8_t)((layer & 0x1f) << 3 | tid);
		}
	} else if (type == 49) {
		if (p->nal_idx < p->nnal) {
			const uint8_t *h = p->nal_hdr[p->nal_idx];
			pl[0] = (uint8_t)((h[0] & 0x81) | 49 << 1);
			pl[1] = h[1];
		}
		if (pl[2] & 0x40)   /* E: the next packet is about the next NAL unit */
			p->nal_idx++;
	} else {
		p->nal_idx++;
	}
}

static int packetizer_out(void *opaque, uint8_t *buf, int size)
{
	struct packetizer *p = opaque;
	if (size < 12)
		return size;
	/* The muxer's own RTCP is off (skip_rtcp); be safe anyway: RTCP has
	 * payload types 200..204 in the second byte. */
	if (buf[1] >= 200 && buf[1] <= 204)
		return size;
	size_t hl = 12 + 4 * (size_t)(buf[0] & 0x0f);
	if (hl < (size_t)size) {
		if (p->codec == AV_CODEC_ID_H264)
			h264_fix_stap_nri(buf + hl, (size_t)size - hl);
		else if (p->codec == AV_CODEC_ID_HEVC)
			h265_fix_headers(p, buf + hl, (size_t)size - hl);
	}
	bool key = p->key_pending;
	p->key_pending = false;
	p->fn(p->arg, buf, (size_t)size, key);
	return size;
}

int packetizer_open(struct packetizer **out, const AVCodecParameters *par, AVRational tb,
		    int payload_type, uint32_t ssrc, packetizer_fn fn, void *arg,
		    char *err, size_t errlen)
{
	struct packetizer *p = calloc(1, sizeof *p);
	if (!p)
		return AVERROR(ENOMEM);
	p->in_tb = tb;
	p->fn = fn;
	p->arg = arg;
	p->is_video = par->codec_type == AVMEDIA_TYPE_VIDEO;
	int r = avformat_alloc_output_context2(&p->mux, NULL, "rtp", NULL);
	if (r < 0)
		goto fail;
	AVStream *st = avformat_new_stream(p->mux, NULL);
	if (!st) {
		r = AVERROR(ENOMEM);
		goto fail;
	}
	if ((r = avcodec_parameters_copy(st->codecpar, par)) < 0)
		goto fail;
	st->codecpar->codec_tag = 0;
	st->time_base = tb;
	p->iobuf = av_malloc(RTP_MTU);
	p->pkt = av_packet_alloc();
	if (!p->iobuf || !p->pkt) {
		r = AVERROR(ENOMEM);
		goto fail;
	}
	p->pb = avio_alloc_context(p->iobuf, RTP_MTU, 1, p, NULL, packetizer_out, NULL);
	if (!p->pb) {
		r = AVERROR(ENOMEM);
		goto fail;
	}
	p->iobuf = NULL;                   /* owned by pb now */
	p->pb->max_packet_size = RTP_MTU;
	p->mux->pb = p->pb;
	p->mux->flags |= AVFMT_FLAG_CUSTOM_IO;
	/* Send each audio frame as soon as the next one arrives: no aggregation delay. */
	p->mux->max_delay = 0;
	AVDictionary *opts = NULL;
	av_dict_set(&opts, "rtpflags", "skip_rtcp", 0);
	if (payload_type >= 0)
		av_dict_set_int(&opts, "payload_type", payload_type, 0);
	av_dict_set_int(&opts, "ssrc", (int32_t)ssrc, 0);
	r = avformat_write_header(p->mux, &opts);
	av_dict_free(&opts);
	if (r < 0)
		goto fail;
	p->header_written = true;
	p->codec = par->codec_id;
	p->ssrc = ssrc;
	if (par->codec_id == AV_CODEC_ID_AAC) {
		uint8_t rnd[6];
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			memset(rnd, 0x5a, sizeof rnd);
		p->own_aac = true;
		p->seq = (uint16_t)(rnd[0] << 8 | rnd[1]);
		p->ts_base = (uint32_t)rnd[2] << 24 | (uint32_t)rnd[3] << 16 | (uint32_t)rnd[4] << 8 | rnd[5];
	}
	AVFormatContext *ctxs[1] = { p->mux };
	if ((r = av_sdp_create(ctxs, 1, p->sdp, sizeof p->sdp)) < 0)
		goto fail;
	p->pt = (uint8_t)packetizer_payload_type(p);
	*out = p;
	return 0;
fail:
	snprintf(err, errlen, "RTP packetizer for %s: %s", avcodec_get_name(par->codec_id), av_err2str(r));
	packetizer_close(&p);
	return r;
}

void packetizer_close(struct packetizer **pp)
{
	struct packetizer *p = *pp;
	if (!p)
		return;
	if (p->mux && p->header_written) {
		/* The trailer frees the muxer's packet buffer; what it still flushes
		 * is not wanted any more. */
		p->fn = packetizer_discard;
		av_write_trailer(p->mux);
	}
	if (p->mux) {
		p->mux->pb = NULL;
		avformat_free_context(p->mux);
	}
	if (p->pb) {
		av_freep(&p->pb->buffer);
		avio_context_free(&p->pb);
	}
	av_free(p->iobuf);
	av_packet_free(&p->pkt);
	free(p);
	*pp = NULL;
}

/* Records the 2-byte headers of an H.265 access unit's NAL units, Annex B
 * (start codes) or length-prefixed (hvcC, nal_length_size bytes). */
static void h265_scan(struct packetizer *p, const uint8_t *d, size_t n, int length_size)
{
	p->nnal = p->nal_idx = 0;
	if (length_size) {
		for (size_t off = 0; off + (size_t)length_size <= n && p->nnal < 64;) {
			size_t len = 0;
			for (int i = 0; i < length_size; i++)
				len = len << 8 | d[off + (size_t)i];
			off += (size_t)length_size;
			if (len < 2 || len > n - off)
				break;
			memcpy(p->nal_hdr[p->nnal++], d + off, 2);
			off += len;
		}
		return;
	}
	for (size_t i = 0; i + 4 < n && p->nnal < 64; i++) {
		if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
			memcpy(p->nal_hdr[p->nnal++], d + i + 3, 2);
			i += 2;
		}
	}
}

static void put_rtp_header(struct packetizer *p, uint8_t *h, bool marker, uint32_t ts)
{
	h[0] = 0x80;
	h[1] = (uint8_t)((marker ? 0x80 : 0) | p->pt);
	h[2] = (uint8_t)(p->seq >> 8);
	h[3] = (uint8_t)p->seq;
	h[4] = (uint8_t)(ts >> 24);
	h[5] = (uint8_t)(ts >> 16);
	h[6] = (uint8_t)(ts >> 8);
	h[7] = (uint8_t)ts;
	h[8] = (uint8_t)(p->ssrc >> 24);
	h[9] = (uint8_t)(p->ssrc >> 16);
	h[10] = (uint8_t)(p->ssrc >> 8);
	h[11] = (uint8_t)p->ssrc;
	p->seq++;
}

/* RFC 3640 AAC-hbr, one AU per packet: AU-headers-length (16 bits), one
 * AU-header (13-bit size, 3-bit index 0), the raw AU. An AU larger than a
 * packet is fragmented; every fragment's AU-header gives the whole AU size
 * and the marker bit is set on the last one. */
static int aac_write(struct packetizer *p, const AVPacket *pkt)
{
	if (pkt->size <= 0 || pkt->size > 8191)
		return AVERROR(EINVAL);
	int64_t pts = av_rescale_q(pkt->pts, p->in_tb, p->mux->streams[0]->time_base);
	uint32_t ts = p->ts_base + (uint32_t)pts;
	uint8_t buf[RTP_MTU];
	size_t room = RTP_MTU - 12 - 4, done = 0, size = (size_t)pkt->size;
	bool first = true;
	while (done < size) {
		size_t n = size - done < room ? size - done : room;
		bool last = done + n == size;
		put_rtp_header(p, buf, last, ts);
		buf[12] = 0;
		buf[13] = 16;
		buf[14] = (uint8_t)(size >> 5);
		buf[15] = (uint8_t)((size & 0x1f) << 3);
		memcpy(buf + 16, pkt->data + done, n);
		p->fn(p->arg, buf, 16 + n, first);
		first = false;
		done += n;
	}
	return 0;
}

int packetizer_write(struct packetizer *p, const AVPacket *pkt)
{
	if (p->own_aac)
		return aac_write(p, pkt);
	if (p->codec == AV_CODEC_ID_HEVC) {
		const AVCodecParameters *par = p->mux->streams[0]->codecpar;
		int ls = par->extradata_size > 22 && par->extradata[0] == 1 ? (par->extradata[21] & 3) + 1 : 0;
		if (pkt->size >= 4 && pkt->data[0] == 0 && pkt->data[1] == 0 &&
		    (pkt->data[2] == 1 || (pkt->data[2] == 0 && pkt->data[3] == 1)))
			ls = 0;
		else if (!ls)
			ls = 4;
		h265_scan(p, pkt->data, (size_t)pkt->size, ls);
	}
	int r = av_packet_ref(p->pkt, pkt);
	if (r < 0)
		return r;
	p->pkt->stream_index = 0;
	av_packet_rescale_ts(p->pkt, p->in_tb, p->mux->streams[0]->time_base);
	/* Audio: every frame is a place a viewer may start. */
	p->key_pending = !p->is_video || (pkt->flags & AV_PKT_FLAG_KEY);
	r = av_write_frame(p->mux, p->pkt);
	av_packet_unref(p->pkt);
	p->key_pending = false;
	return r;
}

void packetizer_flush(struct packetizer *p)
{
	/* Nothing is held back: AAC, the one codec FFmpeg's RTP muxer would
	 * hold until the next frame, is packetized here and sent at once. */
	(void)p;
}

uint32_t packetizer_clock_rate(const struct packetizer *p)
{
	return (uint32_t)p->mux->streams[0]->time_base.den;
}

int packetizer_payload_type(const struct packetizer *p)
{
	/* av_sdp_create wrote "m=<type> 0 RTP/AVP <pt>". */
	const char *m = strstr(p->sdp, "m=");
	if (!m)
		return -1;
	const char *sp = strstr(m, "RTP/AVP ");
	return sp ? atoi(sp + 8) : -1;
}

int packetizer_sdp(const struct packetizer *p, char *buf, size_t len)
{
	const char *m = strstr(p->sdp, "m=");
	if (!m)
		return -EINVAL;
	size_t n = 0;
	/* Copy line by line, dropping a=control (we write our own) and c= (the
	 * session-level c= covers it). */
	while (*m) {
		const char *eol = strstr(m, "\r\n");
		size_t l = eol ? (size_t)(eol - m) : strlen(m);
		if (strncmp(m, "a=control:", 10) && strncmp(m, "c=", 2) && l > 0) {
			if (n + l + 2 >= len)
				return -ENOSPC;
			memcpy(buf + n, m, l);
			memcpy(buf + n + l, "\r\n", 2);
			n += l + 2;
		}
		m += l + (eol ? 2 : 0);
	}
	buf[n] = 0;
	return (int)n;
}
