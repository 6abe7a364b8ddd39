/* packetizer.c — see packetizer.h. */
#include "worker/packetizer.h"

#include <errno.h>
#include <string.h>

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
	char sdp[4096];
};

static void packetizer_discard(void *arg, const uint8_t *rtp, size_t len, bool key)
{
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
	AVFormatContext *ctxs[1] = { p->mux };
	if ((r = av_sdp_create(ctxs, 1, p->sdp, sizeof p->sdp)) < 0)
		goto fail;
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

int packetizer_write(struct packetizer *p, const AVPacket *pkt)
{
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
	/* A NULL packet flushes the muxer's interleaving; the RTP muxer keeps
	 * aggregated AAC frames until the next write, so nothing else to do. */
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
