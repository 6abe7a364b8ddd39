/* testsrc.c — see testsrc.h. */
#include "worker/testsrc.h"

#include <stdbool.h>
#include <string.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#define TEST_WIDTH 640
#define TEST_HEIGHT 360
#define TEST_FPS 25
#define TEST_RATE 44100
#define TEST_TONE_HZ 1000

struct testsrc {
	AVFilterGraph *graph;
	AVFilterContext *sink[TESTSRC_TRACKS];
	AVCodecContext *enc[TESTSRC_TRACKS];
	AVCodecParameters *par[TESTSRC_TRACKS];
	int64_t next_pts[TESTSRC_TRACKS];   /* in the encoder's time base */
	AVFrame *frame;
};

static int open_encoder(struct testsrc *t, int track, char *err, size_t errlen)
{
	bool video = track == 0;
	const AVCodec *codec = video ? avcodec_find_encoder_by_name("libx264") : avcodec_find_encoder(AV_CODEC_ID_AAC);
	if (!codec) {
		snprintf(err, errlen, "test pattern: this FFmpeg has no %s encoder", video ? "libx264" : "AAC");
		return AVERROR_ENCODER_NOT_FOUND;
	}
	AVCodecContext *enc = avcodec_alloc_context3(codec);
	if (!enc)
		return AVERROR(ENOMEM);
	t->enc[track] = enc;
	AVDictionary *opts = NULL;
	if (video) {
		enc->width = TEST_WIDTH;
		enc->height = TEST_HEIGHT;
		enc->pix_fmt = AV_PIX_FMT_YUV420P;
		enc->time_base = (AVRational){ 1, TEST_FPS };
		enc->framerate = (AVRational){ TEST_FPS, 1 };
		enc->gop_size = TEST_FPS;
		enc->max_b_frames = 0;
		enc->bit_rate = 1000000;
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
		av_dict_set(&opts, "preset", "ultrafast", 0);
		av_dict_set(&opts, "tune", "zerolatency", 0);
		av_dict_set(&opts, "threads", "1", 0);
		/* Parameter sets before every key frame: viewers join mid-stream. */
		av_dict_set(&opts, "x264-params", "repeat-headers=1:scenecut=0", 0);
	} else {
		enc->sample_rate = TEST_RATE;
		enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
		av_channel_layout_default(&enc->ch_layout, 2);
		enc->time_base = (AVRational){ 1, TEST_RATE };
		enc->bit_rate = 96000;
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	}
	int r = avcodec_open2(enc, codec, &opts);
	av_dict_free(&opts);
	if (r < 0) {
		snprintf(err, errlen, "test pattern: cannot open the %s encoder: %s", codec->name, av_err2str(r));
		return r;
	}
	t->par[track] = avcodec_parameters_alloc();
	if (!t->par[track])
		return AVERROR(ENOMEM);
	return avcodec_parameters_from_context(t->par[track], enc);
}

static int open_graph(struct testsrc *t, char *err, size_t errlen)
{
	t->graph = avfilter_graph_alloc();
	if (!t->graph)
		return AVERROR(ENOMEM);
	char desc[512];
	snprintf(desc, sizeof desc,
		 "testsrc2=size=%dx%d:rate=%d,format=yuv420p,buffersink;"
		 "sine=frequency=%d:sample_rate=%d:samples_per_frame=1024,"
		 "aformat=sample_fmts=fltp:channel_layouts=stereo,abuffersink",
		 TEST_WIDTH, TEST_HEIGHT, TEST_FPS, TEST_TONE_HZ, TEST_RATE);
	AVFilterInOut *in = NULL, *out = NULL;
	int r = avfilter_graph_parse2(t->graph, desc, &in, &out);
	avfilter_inout_free(&in);
	avfilter_inout_free(&out);
	if (r >= 0)
		r = avfilter_graph_config(t->graph, NULL);
	if (r < 0) {
		snprintf(err, errlen, "test pattern: filter graph: %s", av_err2str(r));
		return r;
	}
	for (unsigned i = 0; i < t->graph->nb_filters; i++) {
		AVFilterContext *f = t->graph->filters[i];
		if (!strcmp(f->filter->name, "buffersink"))
			t->sink[0] = f;
		else if (!strcmp(f->filter->name, "abuffersink"))
			t->sink[1] = f;
	}
	if (!t->sink[0] || !t->sink[1]) {
		snprintf(err, errlen, "test pattern: filter graph has no sinks");
		return AVERROR_BUG;
	}
	return 0;
}

int testsrc_open(struct testsrc **out, char *err, size_t errlen)
{
	struct testsrc *t = calloc(1, sizeof *t);
	if (!t)
		return AVERROR(ENOMEM);
	t->frame = av_frame_alloc();
	int r = t->frame ? open_graph(t, err, errlen) : AVERROR(ENOMEM);
	for (int i = 0; r >= 0 && i < TESTSRC_TRACKS; i++)
		r = open_encoder(t, i, err, errlen);
	if (r < 0) {
		testsrc_close(&t);
		return r;
	}
	*out = t;
	return 0;
}

void testsrc_close(struct testsrc **tp)
{
	struct testsrc *t = *tp;
	if (!t)
		return;
	for (int i = 0; i < TESTSRC_TRACKS; i++) {
		avcodec_free_context(&t->enc[i]);
		avcodec_parameters_free(&t->par[i]);
	}
	avfilter_graph_free(&t->graph);
	av_frame_free(&t->frame);
	free(t);
	*tp = NULL;
}

const AVCodecParameters *testsrc_par(const struct testsrc *t, int track)
{
	return t->par[track];
}

AVRational testsrc_time_base(const struct testsrc *t, int track)
{
	return t->enc[track]->time_base;
}

int testsrc_read(struct testsrc *t, AVPacket *pkt)
{
	for (;;) {
		for (int i = 0; i < TESTSRC_TRACKS; i++) {
			int r = avcodec_receive_packet(t->enc[i], pkt);
			if (r == 0) {
				pkt->stream_index = i;
				return 0;
			}
			if (r != AVERROR(EAGAIN))
				return r;
		}
		/* Feed the track that is behind in time, so both advance together. */
		int track = av_compare_ts(t->next_pts[0], t->enc[0]->time_base,
					  t->next_pts[1], t->enc[1]->time_base) <= 0 ? 0 : 1;
		int r = av_buffersink_get_frame(t->sink[track], t->frame);
		if (r < 0)
			return r;
		/* Our own counter: the encoder's time base, no gaps. */
		t->frame->pts = t->next_pts[track];
		t->next_pts[track] += track == 0 ? 1 : t->frame->nb_samples;
		t->frame->pict_type = AV_PICTURE_TYPE_NONE;
		r = avcodec_send_frame(t->enc[track], t->frame);
		av_frame_unref(t->frame);
		if (r < 0)
			return r;
	}
}
