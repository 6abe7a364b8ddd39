/* decode.c — see decode.h. */
#include "talk/decode.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>

static enum AVCodecID codec_of(const char *name)
{
	if (!strcasecmp(name, "PCMU"))
		return AV_CODEC_ID_PCM_MULAW;
	if (!strcasecmp(name, "PCMA"))
		return AV_CODEC_ID_PCM_ALAW;
	if (!strcasecmp(name, "G722"))
		return AV_CODEC_ID_ADPCM_G722;
	if (!strncasecmp(name, "G726-", 5))
		return AV_CODEC_ID_ADPCM_G726LE;   /* RFC 3551's packing: first sample in the low bits */
	if (!strcasecmp(name, "mpeg4-generic"))
		return AV_CODEC_ID_AAC;
	if (!strcasecmp(name, "opus"))
		return AV_CODEC_ID_OPUS;
	return AV_CODEC_ID_NONE;
}

bool talk_decoder_available(const char *name, void *arg)
{
	enum AVCodecID id = codec_of(name);
	return id != AV_CODEC_ID_NONE && avcodec_find_decoder(id) != NULL;
}

int talk_decoder_open(struct talk_decoder *d, const struct bc_format *f)
{
	memset(d, 0, sizeof *d);
	d->fmt = *f;
	const AVCodec *codec = avcodec_find_decoder(codec_of(f->name));
	if (!codec)
		return -ENOSYS;
	d->ctx = avcodec_alloc_context3(codec);
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	if (!d->ctx || !d->pkt || !d->frame) {
		talk_decoder_close(d);
		return -ENOMEM;
	}
	d->ctx->sample_rate = (int)f->sample_rate;
	/* Opus is described as 2 channels whatever it carries; its decoder
	 * reads the real count from the packets. */
	av_channel_layout_default(&d->ctx->ch_layout, f->channels ? f->channels : 1);
	if (f->g726_bits)
		d->ctx->bits_per_coded_sample = f->g726_bits;
	if (f->aac_config_len) {
		d->ctx->extradata = av_mallocz(f->aac_config_len + AV_INPUT_BUFFER_PADDING_SIZE);
		if (!d->ctx->extradata) {
			talk_decoder_close(d);
			return -ENOMEM;
		}
		memcpy(d->ctx->extradata, f->aac_config, f->aac_config_len);
		d->ctx->extradata_size = f->aac_config_len;
	}
	int r = avcodec_open2(d->ctx, codec, NULL);
	if (r < 0) {
		talk_decoder_close(d);
		return r;
	}
	return 0;
}

void talk_decoder_close(struct talk_decoder *d)
{
	avcodec_free_context(&d->ctx);
	av_packet_free(&d->pkt);
	av_frame_free(&d->frame);
}

static int decode_one(struct talk_decoder *d, const uint8_t *data, size_t len,
		      void (*emit)(const AVFrame *, void *), void *arg)
{
	if (!len)
		return 0;
	av_packet_unref(d->pkt);
	if (av_new_packet(d->pkt, (int)len) < 0)
		return -ENOMEM;
	memcpy(d->pkt->data, data, len);
	int r = avcodec_send_packet(d->ctx, d->pkt);
	if (r < 0 && r != AVERROR(EAGAIN))
		return r;
	while ((r = avcodec_receive_frame(d->ctx, d->frame)) == 0) {
		emit(d->frame, arg);
		av_frame_unref(d->frame);
	}
	return r == AVERROR(EAGAIN) || r == AVERROR_EOF ? 0 : r;
}

int talk_decode(struct talk_decoder *d, const uint8_t *p, size_t len,
		void (*emit)(const AVFrame *, void *), void *arg)
{
	if (!d->fmt.aac_config_len)
		return decode_one(d, p, len, emit, arg);
	/* RFC 3640 AAC-hbr: AU-headers-length in bits, 16-bit headers. */
	if (len < 2)
		return -EINVAL;
	size_t hbits = (size_t)(p[0] << 8 | p[1]);
	if (hbits % 16)
		return -EINVAL;
	size_t nau = hbits / 16, off = 2 + nau * 2;
	if (off > len)
		return -EINVAL;
	for (size_t i = 0; i < nau; i++) {
		size_t size = (size_t)(p[2 + 2 * i] << 8 | p[3 + 2 * i]) >> 3;
		if (size > len - off)
			return -EINVAL;   /* a fragmented AU: not sent for frames this small */
		int r = decode_one(d, p + off, size, emit, arg);
		if (r < 0)
			return r;
		off += size;
	}
	return 0;
}
