/* source.c — see source.h.
 *
 * Files: libavformat demuxes; we keep the first video and the first audio
 * stream. ADTS AAC (MPEG-TS, raw .aac) gets its AudioSpecificConfig built
 * from the stream parameters and its ADTS headers stripped, because RTP
 * (RFC 3640) and the SDP config= want raw AAC.
 *
 * Test pattern: testsrc.c renders and encodes it (H.264 + AAC).
 *
 * Output timeline: out = in + shift (µs). The shift grows by one file
 * duration per loop, and is re-derived after a seek so that time keeps
 * moving forward.
 */
#include "worker/source.h"

#include <errno.h>
#include <string.h>

#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "common/ipc-t.h"
#include "common/log.h"
#include "worker/testsrc.h"

struct source_in {
	int stream_index;             /* in the demuxer */
	AVBSFContext *bsf;            /* aac_adtstoasc, or NULL */
	int64_t last_out_dts_us;      /* for monotonic output */
	int64_t synth_dts;            /* next in-time for streams without timestamps */
	int g726_bits;                /* MSB-first G.726 to repack, bits per codeword */
};

struct source {
	int kind;
	int loop_nums, loops_done;
	AVFormatContext *fmt;
	int ntracks;
	struct source_track tracks[SOURCE_MAX_TRACKS];
	AVCodecParameters *pars[SOURCE_MAX_TRACKS];
	struct source_in in[SOURCE_MAX_TRACKS];
	int64_t start_us;             /* file start time */
	int64_t pass_end_us;          /* max in-time end seen this pass */
	int64_t duration_us;
	int64_t shift_us;             /* out = in + shift */
	int64_t out_end_us;           /* max out-time end emitted */
	bool resync;                  /* after a seek: derive shift from the next packet */
	AVPacket *held;               /* packet read ahead (next_time / test encoder output) */
	AVPacket *tmp;
	struct testsrc *test;         /* the built-in pattern, or NULL */
};

static int track_of_stream(const struct source *s, int stream_index)
{
	for (int i = 0; i < s->ntracks; i++)
		if (s->in[i].stream_index == stream_index)
			return i;
	return -1;
}

/* AudioSpecificConfig (ISO 14496-3 1.6.2.1) from profile, rate and channels. */
static int aac_make_asc(AVCodecParameters *par)
{
	static const int rates[] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000,
				     22050, 16000, 12000, 11025, 8000, 7350 };
	int idx = -1;
	for (int i = 0; i < 13; i++)
		if (rates[i] == par->sample_rate)
			idx = i;
	int ch = par->ch_layout.nb_channels;
	if (idx < 0 || ch < 1 || ch > 7)
		return AVERROR(EINVAL);
	int aot = par->profile >= 0 ? par->profile + 1 : 2;
	uint8_t *ed = av_mallocz(2 + AV_INPUT_BUFFER_PADDING_SIZE);
	if (!ed)
		return AVERROR(ENOMEM);
	ed[0] = (uint8_t)((aot << 3) | (idx >> 1));
	ed[1] = (uint8_t)(((idx & 1) << 7) | (ch << 3));
	av_freep(&par->extradata);
	par->extradata = ed;
	par->extradata_size = 2;
	return 0;
}

/* G.726 codewords packed from the most significant bit (FFmpeg's "G726",
 * what WAV files hold) repacked from the least significant bit, the order
 * RFC 3551 §4.5.4 prescribes for RTP "G726-xx" (FFmpeg's "G726LE"). */
static int g726_to_rtp_order(AVPacket *pkt, int bits)
{
	if (bits < 2 || bits > 5)
		return AVERROR(EINVAL);
	int r = av_packet_make_writable(pkt);
	if (r < 0)
		return r;
	size_t ncodes = (size_t)pkt->size * 8 / (size_t)bits;
	uint8_t out[8192];
	if ((size_t)pkt->size > sizeof out)
		return AVERROR(EINVAL);
	memset(out, 0, (size_t)pkt->size);
	for (size_t i = 0; i < ncodes; i++) {
		unsigned code = 0;
		for (int b = 0; b < bits; b++) {          /* read MSB-first */
			size_t bit = i * (size_t)bits + (size_t)b;
			code = code << 1 | ((pkt->data[bit / 8] >> (7 - bit % 8)) & 1);
		}
		for (int b = 0; b < bits; b++) {          /* write LSB-first */
			size_t bit = i * (size_t)bits + (size_t)b;
			out[bit / 8] |= (uint8_t)(((code >> b) & 1) << (bit % 8));
		}
	}
	memcpy(pkt->data, out, (size_t)pkt->size);
	return 0;
}

static int open_file(struct source *s, const char *path, char *err, size_t errlen)
{
	int r = avformat_open_input(&s->fmt, path, NULL, NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, av_err2str(r));
		return r;
	}
	r = avformat_find_stream_info(s->fmt, NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot read stream info of %s: %s", path, av_err2str(r));
		return r;
	}
	int vi = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	int ai = av_find_best_stream(s->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	int picks[2] = { vi, ai };
	for (int k = 0; k < 2; k++) {
		if (picks[k] < 0)
			continue;
		AVStream *st = s->fmt->streams[picks[k]];
		if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
			continue;
		int t = s->ntracks++;
		s->in[t].stream_index = picks[k];
		s->pars[t] = avcodec_parameters_alloc();
		if (!s->pars[t])
			return AVERROR(ENOMEM);
		avcodec_parameters_copy(s->pars[t], st->codecpar);
		s->tracks[t].par = s->pars[t];
		s->tracks[t].time_base = st->time_base;
		s->tracks[t].type = st->codecpar->codec_type;
		if (st->codecpar->codec_id == AV_CODEC_ID_ADPCM_G726) {
			s->in[t].g726_bits = st->codecpar->bits_per_coded_sample;
			s->pars[t]->codec_id = AV_CODEC_ID_ADPCM_G726LE;
		}
		if (st->codecpar->codec_id == AV_CODEC_ID_AAC && st->codecpar->extradata_size == 0) {
			const AVBitStreamFilter *f = av_bsf_get_by_name("aac_adtstoasc");
			if (!f || av_bsf_alloc(f, &s->in[t].bsf) < 0)
				return AVERROR(ENOMEM);
			avcodec_parameters_copy(s->in[t].bsf->par_in, st->codecpar);
			s->in[t].bsf->time_base_in = st->time_base;
			if ((r = av_bsf_init(s->in[t].bsf)) < 0)
				return r;
			if ((r = aac_make_asc(s->pars[t])) < 0) {
				snprintf(err, errlen, "%s: unsupported AAC parameters", path);
				return r;
			}
		}
	}
	if (s->ntracks == 0) {
		snprintf(err, errlen, "%s has no audio or video stream", path);
		return AVERROR_STREAM_NOT_FOUND;
	}
	for (unsigned i = 0; i < s->fmt->nb_streams; i++)
		if (track_of_stream(s, (int)i) < 0)
			s->fmt->streams[i]->discard = AVDISCARD_ALL;
	s->start_us = s->fmt->start_time != AV_NOPTS_VALUE ? s->fmt->start_time : 0;
	s->duration_us = s->fmt->duration != AV_NOPTS_VALUE ? s->fmt->duration : 0;
	s->shift_us = -s->start_us;
	return 0;
}

static int open_test(struct source *s, char *err, size_t errlen)
{
	int r = testsrc_open(&s->test, err, errlen);
	if (r < 0)
		return r;
	for (int t = 0; t < TESTSRC_TRACKS; t++) {
		s->tracks[t].par = testsrc_par(s->test, t);
		s->tracks[t].time_base = testsrc_time_base(s->test, t);
		s->tracks[t].type = s->tracks[t].par->codec_type;
	}
	s->ntracks = TESTSRC_TRACKS;
	return 0;
}

int source_open(struct source **out, int kind, const char *path, int loop_nums, char *err, size_t errlen)
{
	struct source *s = calloc(1, sizeof *s);
	if (!s)
		return AVERROR(ENOMEM);
	s->kind = kind;
	s->loop_nums = loop_nums;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++)
		s->in[i].last_out_dts_us = INT64_MIN;
	s->tmp = av_packet_alloc();
	s->held = av_packet_alloc();
	int r = (!s->tmp || !s->held) ? AVERROR(ENOMEM)
		: kind == SOURCE_TEST ? open_test(s, err, errlen) : open_file(s, path, err, errlen);
	if (r < 0) {
		source_close(&s);
		return r;
	}
	s->held->data = NULL;
	s->held->size = 0;
	s->held->stream_index = -1;
	*out = s;
	return 0;
}

void source_close(struct source **sp)
{
	struct source *s = *sp;
	if (!s)
		return;
	for (int i = 0; i < SOURCE_MAX_TRACKS; i++) {
		av_bsf_free(&s->in[i].bsf);
		avcodec_parameters_free(&s->pars[i]);
	}
	avformat_close_input(&s->fmt);
	av_packet_free(&s->tmp);
	av_packet_free(&s->held);
	testsrc_close(&s->test);
	free(s);
	*sp = NULL;
}

int source_ntracks(const struct source *s) { return s->ntracks; }
const struct source_track *source_track(const struct source *s, int i) { return &s->tracks[i]; }
bool source_is_live(const struct source *s) { return s->kind == SOURCE_TEST; }
int64_t source_duration_us(const struct source *s) { return s->duration_us; }

static int64_t to_us(int64_t ts, AVRational tb)
{
	return av_rescale_q(ts, tb, AV_TIME_BASE_Q);
}

/* One packet of the current pass, in-time, already filtered. */
static int read_file_packet(struct source *s, AVPacket *pkt)
{
	for (;;) {
		int r = av_read_frame(s->fmt, pkt);
		if (r < 0)
			return r;
		int t = track_of_stream(s, pkt->stream_index);
		if (t < 0 || pkt->size == 0) {
			av_packet_unref(pkt);
			continue;
		}
		pkt->stream_index = t;
		if (s->in[t].bsf) {
			r = av_bsf_send_packet(s->in[t].bsf, pkt);
			av_packet_unref(pkt);
			if (r < 0)
				continue;
			r = av_bsf_receive_packet(s->in[t].bsf, pkt);
			if (r < 0)
				continue;
			pkt->stream_index = t;
		}
		if (pkt->dts == AV_NOPTS_VALUE)
			pkt->dts = pkt->pts;
		if (pkt->pts == AV_NOPTS_VALUE)
			pkt->pts = pkt->dts;
		if (pkt->dts == AV_NOPTS_VALUE) {
			/* Raw elementary streams (.h264, .h265) carry no timestamps,
			 * only durations from the frame rate: count them ourselves. */
			if (pkt->duration <= 0) {
				av_packet_unref(pkt);
				continue;
			}
			pkt->pts = pkt->dts = s->in[t].synth_dts;
		}
		s->in[t].synth_dts = pkt->dts + (pkt->duration > 0 ? pkt->duration : 0);
		if (s->in[t].g726_bits && g726_to_rtp_order(pkt, s->in[t].g726_bits) < 0) {
			av_packet_unref(pkt);
			continue;
		}
		return 0;
	}
}

static int rewind_file(struct source *s)
{
	int r = avformat_seek_file(s->fmt, -1, INT64_MIN, s->start_us, s->start_us, 0);
	if (r < 0)
		r = av_seek_frame(s->fmt, -1, s->start_us, AVSEEK_FLAG_BACKWARD);
	if (r < 0)   /* raw elementary streams: back to byte 0 */
		r = av_seek_frame(s->fmt, -1, 0, AVSEEK_FLAG_BYTE);
	if (r < 0)
		return r;
	for (int t = 0; t < s->ntracks; t++) {
		s->in[t].synth_dts = 0;
		if (s->in[t].bsf)
			av_bsf_flush(s->in[t].bsf);
	}
	return 0;
}

static int read_file(struct source *s, AVPacket *pkt)
{
	for (;;) {
		int r = read_file_packet(s, pkt);
		if (r == AVERROR_EOF) {
			s->loops_done++;
			if (s->loop_nums >= 0 && s->loops_done >= s->loop_nums)
				return AVERROR_EOF;
			int64_t pass = s->pass_end_us - s->start_us;
			if (pass <= 0)
				return AVERROR_EOF;
			if ((r = rewind_file(s)) < 0)
				return r;
			/* The next pass starts where this one ended. */
			s->shift_us = s->out_end_us - s->start_us;
			s->pass_end_us = 0;
			continue;
		}
		if (r < 0)
			return r;
		int t = pkt->stream_index;
		AVRational tb = s->tracks[t].time_base;
		int64_t in_dts = to_us(pkt->dts, tb);
		if (s->resync) {
			s->shift_us = s->out_end_us - in_dts;
			s->resync = false;
		}
		int64_t end = to_us(pkt->pts + (pkt->duration > 0 ? pkt->duration : 0), tb);
		if (end > s->pass_end_us)
			s->pass_end_us = end;
		int64_t d = av_rescale_q(s->shift_us, AV_TIME_BASE_Q, tb);
		pkt->pts += d;
		pkt->dts += d;
		int64_t out_dts = to_us(pkt->dts, tb);
		if (out_dts < s->in[t].last_out_dts_us) {
			/* Never let a track's time go back (interleaving after a seek). */
			av_packet_unref(pkt);
			continue;
		}
		s->in[t].last_out_dts_us = out_dts;
		int64_t out_end = end + s->shift_us;
		if (out_end > s->out_end_us)
			s->out_end_us = out_end;
		return 0;
	}
}

int source_read(struct source *s, AVPacket *pkt)
{
	if (s->held->stream_index >= 0) {
		av_packet_move_ref(pkt, s->held);
		s->held->stream_index = -1;
		return 0;
	}
	return s->kind == SOURCE_TEST ? testsrc_read(s->test, pkt) : read_file(s, pkt);
}

int64_t source_next_time_us(struct source *s)
{
	if (s->held->stream_index < 0) {
		int r = s->kind == SOURCE_TEST ? testsrc_read(s->test, s->held) : read_file(s, s->held);
		if (r < 0) {
			s->held->stream_index = -1;
			return INT64_MIN;
		}
	}
	return to_us(s->held->dts != AV_NOPTS_VALUE ? s->held->dts : s->held->pts,
		     s->tracks[s->held->stream_index].time_base);
}

int source_seek(struct source *s, int64_t pos_us)
{
	if (s->kind == SOURCE_TEST)
		return -ENOTSUP;
	if (s->held->stream_index >= 0) {
		av_packet_unref(s->held);
		s->held->stream_index = -1;
	}
	int64_t target = s->start_us + pos_us;
	int r = avformat_seek_file(s->fmt, -1, INT64_MIN, target, target, 0);
	if (r < 0)
		r = av_seek_frame(s->fmt, -1, target, AVSEEK_FLAG_BACKWARD);
	if (r < 0)
		return r;
	for (int t = 0; t < s->ntracks; t++)
		if (s->in[t].bsf)
			av_bsf_flush(s->in[t].bsf);
	s->resync = true;
	return 0;
}

int64_t source_file_time_us(const struct source *s, int64_t t_us)
{
	return t_us - s->shift_us - s->start_us;
}
