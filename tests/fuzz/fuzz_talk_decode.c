/* fuzz_talk_decode.c — libFuzzer target for the back channel's
 * depacketizers and decoders (talk/decode.c): what a talker sends, after
 * the jitter buffer, goes through them and FFmpeg's real decoders.
 *
 * Input: one byte picks the format, among the back-channel formats of
 * proto/backchannel.c (configs[] below: the one each configuration puts
 * first), then a sequence of records: u16 length, that many bytes of RTP
 * payload (at most the jitter buffer's JITTER_MAX_PAYLOAD).
 *
 * Beyond "no crash": talk_decode() gives 0 or an error, and every frame it
 * emits is audio of a sane shape whose samples (all of them, in every
 * plane) can be read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include <libavutil/samplefmt.h>

#include "tests/fuzz/fuzz-check.h"
#include "proto/backchannel.h"
#include "talk/decode.h"
#include "talk/jitter.h"

/* <codec> <samplerate> <channels> <bitrate> of the config's <backchannel> */
static const struct {
	const char *codec;
	int rate, channels, bitrate;
} configs[] = {
	{ "G711U", 0, 0, 0 }, { "G711A", 0, 0, 0 }, { "G722", 0, 0, 0 },
	{ "G726", 0, 0, 16 }, { "G726", 0, 0, 24 }, { "G726", 0, 0, 32 }, { "G726", 0, 0, 40 },
	{ "AAC", 16000, 1, 0 }, { "AAC", 8000, 1, 0 }, { "AAC", 44100, 2, 0 }, { "AAC", 48000, 2, 0 },
	{ "AAC", 22050, 1, 0 }, { "AAC", 96000, 2, 0 }, { "AAC", 7350, 1, 0 },
	{ "OPUS", 0, 0, 0 },
};
#define NCONFIGS (sizeof(configs) / sizeof(configs[0]))

static struct bc_format formats[NCONFIGS];
static int nformats;

struct tally {
	const struct bc_format *fmt;
	uint64_t frames, samples;
	unsigned sum;
};

static void emit(const AVFrame *f, void *arg)
{
	struct tally *t = arg;
	int ch = f->ch_layout.nb_channels;
	CHECK(f->nb_samples > 0 && f->nb_samples <= 1 << 16);
	/* AAC may switch to many channels in-band (a program config
	 * element), Opus has up to 255: the talk process downmixes */
	CHECK(ch >= 1 && ch <= 255);
	CHECK(ch <= AV_NUM_DATA_POINTERS || f->extended_data != f->data);
	CHECK(f->sample_rate > 0);
	CHECK(f->format > AV_SAMPLE_FMT_NONE && f->format < AV_SAMPLE_FMT_NB);
	int bps = av_get_bytes_per_sample((enum AVSampleFormat)f->format);
	bool planar = av_sample_fmt_is_planar((enum AVSampleFormat)f->format);
	CHECK(bps > 0);
	size_t plane = (size_t)f->nb_samples * (size_t)bps * (size_t)(planar ? 1 : ch);
	/* what the talk process resamples: every byte of every plane */
	for (int p = 0; p < (planar ? ch : 1); p++) {
		const uint8_t *d = f->extended_data[p];
		CHECK(d != NULL);
		for (size_t i = 0; i < plane; i++)
			t->sum += d[i];
	}
	t->frames++;
	t->samples += (uint64_t)f->nb_samples;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	av_log_set_level(AV_LOG_QUIET);
	for (size_t i = 0; i < NCONFIGS; i++) {
		struct bc_format all[BC_MAX_FORMATS];
		int n = bc_formats(configs[i].codec, configs[i].rate, configs[i].channels, configs[i].bitrate,
				   talk_decoder_available, NULL, all);
		CHECK(n >= 1 && n <= BC_MAX_FORMATS);
		formats[nformats++] = all[0];
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct bc_format *fmt = &formats[data[0] % nformats];
	struct talk_decoder d;
	if (talk_decoder_open(&d, fmt) < 0)
		abort();   /* a format bc_formats() offers has a decoder */
	struct tally t = { .fmt = fmt };
	size_t off = 1;
	while (off + 2 <= size) {
		size_t len = (size_t)(data[off] << 8 | data[off + 1]);
		off += 2;
		if (len > size - off)
			len = size - off;
		if (len > JITTER_MAX_PAYLOAD)
			len = JITTER_MAX_PAYLOAD;
		/* a copy of its own, as the jitter buffer hands it over, so that
		 * reading past the payload is caught */
		uint8_t *p = malloc(len ? len : 1);
		if (!p)
			break;
		memcpy(p, data + off, len);
		int r = talk_decode(&d, p, len, emit, &t);
		CHECK(r <= 0);
		free(p);
		off += len;
	}
	talk_decoder_close(&d);
	CHECK(t.frames <= t.samples);
	return 0;
}
