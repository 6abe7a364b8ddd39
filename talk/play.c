/* play.c — the talk process (see talk.h): packets in, audio out on ALSA. */
#include <alsa/asoundlib.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>

#include "common/ev.h"
#include "common/ipc.h"
#include "common/log.h"
#include "talk/decode.h"
#include "talk/jitter.h"
#include "talk/talk.h"

#define TICK_MS 5
#define STATUS_US 1000000
#define MAX_PENDING_S 1        /* decoded audio the device has not taken yet, at most */

struct talk {
	struct ev_loop *loop;
	int ipc_fd;
	int pkt_fd;
	struct ipc_talk cfg;
	struct log_tags tags;
	bool started;
	snd_pcm_t *pcm;
	unsigned out_rate, out_channels;
	struct jitter jb;
	struct talk_decoder dec;
	bool dec_open;
	uint8_t dec_pt;
	const struct bc_format *jb_fmt;       /* the format the jitter buffer's clock is for */
	SwrContext *swr;
	int swr_rate, swr_fmt, swr_channels;
	int16_t *out;                         /* decoded, resampled, not yet taken by ALSA */
	size_t out_frames, out_cap;
	FILE *wav;
	uint64_t wav_bytes;
	uint64_t latency_sum_us, latency_n;
	int64_t latency_max_us;
	int64_t pending_arrival_us;           /* of the packet being decoded */
	uint64_t dropped_frames;
	int64_t last_status_us;
	char codec[24];
};

static void alsa_log(const char *file, int line, const char *function, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void alsa_log(const char *file, int line, const char *function, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_msg(LOG_DEBUG, NULL, NULL, "ALSA: %s%s%s", msg, err ? ": " : "", err ? snd_strerror(err) : "");
}

/* ------------------------------------------------------------ WAV file */

static void wav_header(FILE *f, unsigned rate, unsigned channels, uint64_t data_bytes)
{
	uint32_t d = data_bytes > 0xffffffffu - 36 ? 0xffffffffu - 36 : (uint32_t)data_bytes;
	uint8_t h[44];
	memcpy(h, "RIFF", 4);
	uint32_t v = 36 + d;
	memcpy(h + 4, &v, 4);   /* little-endian host (x86, arm) */
	memcpy(h + 8, "WAVEfmt ", 8);
	v = 16;
	memcpy(h + 16, &v, 4);
	uint16_t s = 1;         /* PCM */
	memcpy(h + 20, &s, 2);
	s = (uint16_t)channels;
	memcpy(h + 22, &s, 2);
	v = rate;
	memcpy(h + 24, &v, 4);
	v = rate * channels * 2;
	memcpy(h + 28, &v, 4);
	s = (uint16_t)(channels * 2);
	memcpy(h + 32, &s, 2);
	s = 16;
	memcpy(h + 34, &s, 2);
	memcpy(h + 36, "data", 4);
	memcpy(h + 40, &d, 4);
	fseek(f, 0, SEEK_SET);
	fwrite(h, 1, sizeof h, f);
	fseek(f, 0, SEEK_END);
}

static void wav_close(struct talk *t)
{
	if (!t->wav)
		return;
	wav_header(t->wav, t->out_rate, t->out_channels, t->wav_bytes);
	fclose(t->wav);
	t->wav = NULL;
	log_tagged(LOG_INFO, &t->tags, "talk recorded to %s (%.1f s)", t->cfg.wav_path,
		   (double)t->wav_bytes / (2.0 * t->out_channels * t->out_rate));
}

/* ------------------------------------------------------------ ALSA */

static int alsa_open(struct talk *t, char *err, size_t errlen)
{
	int r = snd_pcm_open(&t->pcm, t->cfg.device, SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK);
	if (r < 0) {
		snprintf(err, errlen, "cannot open ALSA device '%s': %s", t->cfg.device, snd_strerror(r));
		t->pcm = NULL;
		return r;
	}
	/* Mono first (the back channel is mono); a device that only takes
	 * stereo gets the same samples on both channels. 100 ms of buffer. */
	unsigned channels = 1;
	r = snd_pcm_set_params(t->pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, channels,
			       TALK_OUTPUT_RATE, 1, 100000);
	if (r < 0) {
		channels = 2;
		r = snd_pcm_set_params(t->pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, channels,
				       TALK_OUTPUT_RATE, 1, 100000);
	}
	if (r < 0) {
		snprintf(err, errlen, "ALSA device '%s' takes neither mono nor stereo S16 at %d Hz: %s",
			 t->cfg.device, TALK_OUTPUT_RATE, snd_strerror(r));
		snd_pcm_close(t->pcm);
		t->pcm = NULL;
		return r;
	}
	snd_pcm_uframes_t buffer = 0, period = 0;
	snd_pcm_get_params(t->pcm, &buffer, &period);
	/* Start playing as soon as one period is there, not when the whole
	 * buffer is full: that would add its length to the latency. */
	snd_pcm_sw_params_t *sw;
	snd_pcm_sw_params_alloca(&sw);
	if (snd_pcm_sw_params_current(t->pcm, sw) == 0 && period) {
		snd_pcm_sw_params_set_start_threshold(t->pcm, sw, period);
		snd_pcm_sw_params(t->pcm, sw);
	}
	t->out_rate = TALK_OUTPUT_RATE;
	t->out_channels = channels;
	return 0;
}

/* Hands ALSA what it takes of t->out now; keeps the rest. */
static void alsa_flush(struct talk *t)
{
	size_t done = 0;
	while (done < t->out_frames) {
		snd_pcm_sframes_t w = snd_pcm_writei(t->pcm, t->out + done * t->out_channels, t->out_frames - done);
		if (w == -EAGAIN)
			break;
		if (w < 0) {
			/* -EPIPE (underrun) and -ESTRPIPE (suspend): recover, go on. */
			if (snd_pcm_recover(t->pcm, (int)w, 1) < 0) {
				log_tagged(LOG_WARN, &t->tags, "ALSA write: %s", snd_strerror((int)w));
				break;
			}
			continue;
		}
		done += (size_t)w;
	}
	if (done) {
		memmove(t->out, t->out + done * t->out_channels, (t->out_frames - done) * t->out_channels * 2);
		t->out_frames -= done;
	}
	size_t limit = (size_t)t->out_rate * MAX_PENDING_S;
	if (t->out_frames > limit) {
		/* The device is not taking audio in real time: drop the oldest
		 * rather than fall further behind. */
		size_t drop = t->out_frames - limit;
		memmove(t->out, t->out + drop * t->out_channels, limit * t->out_channels * 2);
		t->out_frames = limit;
		t->dropped_frames += drop;
	}
}

static int out_reserve(struct talk *t, size_t more)
{
	if (t->out_frames + more <= t->out_cap)
		return 0;
	size_t cap = t->out_cap ? t->out_cap : 4096;
	while (cap < t->out_frames + more)
		cap *= 2;
	int16_t *n = realloc(t->out, cap * t->out_channels * 2);
	if (!n)
		return -ENOMEM;
	t->out = n;
	t->out_cap = cap;
	return 0;
}

static void out_append(struct talk *t, size_t frames)
{
	if (t->wav) {
		size_t bytes = frames * t->out_channels * 2;
		if (fwrite(t->out + t->out_frames * t->out_channels, 1, bytes, t->wav) == bytes)
			t->wav_bytes += bytes;
	}
	t->out_frames += frames;
}

/* ------------------------------------------------------------ decoding */

static int swr_setup(struct talk *t, const AVFrame *f)
{
	if (t->swr && t->swr_rate == f->sample_rate && t->swr_fmt == f->format &&
	    t->swr_channels == f->ch_layout.nb_channels)
		return 0;
	swr_free(&t->swr);
	AVChannelLayout out, in;
	av_channel_layout_default(&out, (int)t->out_channels);
	if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
		return -ENOMEM;
	int r = swr_alloc_set_opts2(&t->swr, &out, AV_SAMPLE_FMT_S16, (int)t->out_rate, &in,
				    (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
	av_channel_layout_uninit(&in);
	if (r < 0 || swr_init(t->swr) < 0) {
		swr_free(&t->swr);
		return -EINVAL;
	}
	t->swr_rate = f->sample_rate;
	t->swr_fmt = f->format;
	t->swr_channels = f->ch_layout.nb_channels;
	return 0;
}

static void on_frame(const AVFrame *f, void *arg)
{
	struct talk *t = arg;
	if (swr_setup(t, f) < 0)
		return;
	int room = swr_get_out_samples(t->swr, f->nb_samples);
	if (room <= 0 || out_reserve(t, (size_t)room) < 0)
		return;
	uint8_t *dst = (uint8_t *)(t->out + t->out_frames * t->out_channels);
	int n = swr_convert(t->swr, &dst, room, (const uint8_t **)f->extended_data, f->nb_samples);
	if (n > 0)
		out_append(t, (size_t)n);
}

/* Silence for a lost packet's RTP duration: the timing stays right and
 * the gap is quiet rather than a click. */
static void conceal(struct talk *t, uint32_t ticks, uint32_t clock_rate)
{
	if (!ticks || !clock_rate)
		return;
	size_t frames = (size_t)((uint64_t)ticks * t->out_rate / clock_rate);
	if (frames > t->out_rate || out_reserve(t, frames) < 0)
		return;
	memset(t->out + t->out_frames * t->out_channels, 0, frames * t->out_channels * 2);
	out_append(t, frames);
}

static void play_packet(struct talk *t, const struct jitter_out *o)
{
	const struct bc_format *f = bc_find(t->cfg.formats, (int)t->cfg.nformats, o->pt);
	if (!f) {
		t->jb.stats.malformed++;
		return;
	}
	if (!t->dec_open || t->dec_pt != o->pt) {
		if (t->dec_open)
			talk_decoder_close(&t->dec);
		t->dec_open = false;
		int r = talk_decoder_open(&t->dec, f);
		if (r < 0) {
			log_tagged(LOG_WARN, &t->tags, "cannot open a decoder for %s: %s", f->name, av_err2str(r));
			return;
		}
		t->dec_open = true;
		t->dec_pt = o->pt;
		snprintf(t->codec, sizeof t->codec, "%s", f->name);
		log_tagged(LOG_INFO, &t->tags, "talker sends %s/%u (payload type %u)", f->name, f->clock_rate, f->pt);
	}
	if (talk_decode(&t->dec, o->payload, o->len, on_frame, t) < 0)
		t->jb.stats.malformed++;
}

/* The formats' RTP clock for the jitter buffer: taken from the first
 * packet's payload type (all packets of a talker share one). */
static const struct bc_format *format_of_first(struct talk *t, const uint8_t *pkt, size_t len)
{
	struct rtp_view v;
	if (rtp_parse(pkt, len, &v) < 0)
		return NULL;
	return bc_find(t->cfg.formats, (int)t->cfg.nformats, v.pt);
}

static void send_status(struct talk *t)
{
	struct ipc_talk_status st = {
		.packets = t->jb.stats.played, .lost = t->jb.stats.lost, .late = t->jb.stats.late,
		.duplicates = t->jb.stats.duplicates, .malformed = t->jb.stats.malformed,
		.latency_avg_ms = t->latency_n ? (uint32_t)(t->latency_sum_us / t->latency_n / 1000) : 0,
		.latency_max_ms = (uint32_t)(t->latency_max_us / 1000),
	};
	snprintf(st.codec, sizeof st.codec, "%s", t->codec);
	ipc_send(t->ipc_fd, IPC_TALK_STATUS, 0, &st, sizeof st, -1);
	t->last_status_us = ev_now_us();
}

static void play_due(struct talk *t)
{
	int64_t now = ev_now_us();
	struct jitter_out o;
	enum jitter_result r;
	bool any = false;
	while ((r = jitter_get(&t->jb, now, &o)) != JITTER_NONE) {
		any = true;
		if (r == JITTER_LOST) {
			conceal(t, o.duration, t->jb.clock_rate);
			continue;
		}
		play_packet(t, &o);
		alsa_flush(t);
		/* Arrival to the moment its samples were handed to ALSA. */
		int64_t lat = ev_now_us() - o.arrival_us;
		t->latency_sum_us += (uint64_t)lat;
		t->latency_n++;
		if (lat > t->latency_max_us)
			t->latency_max_us = lat;
	}
	if (!any && t->out_frames)
		alsa_flush(t);
	if (now - t->last_status_us >= STATUS_US)
		send_status(t);
}

static int64_t talk_tick(struct ev_loop *loop, long long id, void *arg)
{
	play_due(arg);
	return TICK_MS;
}

static void on_packets(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct talk *t = arg;
	uint8_t buf[sizeof(struct talk_packet_hdr) + 2048];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			/* The talker is gone: what is buffered still plays below. */
			log_tagged(LOG_DEBUG, &t->tags, "the talker's packet stream ended");
			ev_stop(loop);
			return;
		}
		if ((size_t)n > sizeof buf || (size_t)n < sizeof(struct talk_packet_hdr)) {
			t->jb.stats.malformed++;
			continue;
		}
		struct talk_packet_hdr h;
		memcpy(&h, buf, sizeof h);
		const uint8_t *pkt = buf + sizeof h;
		size_t len = (size_t)n - sizeof h;
		if (!t->jb_fmt) {
			t->jb_fmt = format_of_first(t, pkt, len);
			if (!t->jb_fmt) {
				t->jb.stats.malformed++;
				continue;
			}
			/* The buffer's clock is the talker's format's; what was
			 * refused before that still counts. */
			uint64_t refused = t->jb.stats.malformed;
			jitter_init(&t->jb, t->jb_fmt->clock_rate, TALK_JITTER_DELAY_US);
			t->jb.stats.malformed = refused;
		}
		jitter_put(&t->jb, pkt, len, h.arrival_us);
	}
	play_due(t);
}

static int talk_start(struct talk *t, const struct ipc_talk *cfg, int pkt_fd)
{
	t->cfg = *cfg;
	if (t->cfg.nformats > BC_MAX_FORMATS)
		t->cfg.nformats = BC_MAX_FORMATS;
	t->cfg.device[sizeof t->cfg.device - 1] = 0;
	t->cfg.wav_path[sizeof t->cfg.wav_path - 1] = 0;
	t->cfg.stream[sizeof t->cfg.stream - 1] = 0;
	t->cfg.session[sizeof t->cfg.session - 1] = 0;
	t->cfg.client[sizeof t->cfg.client - 1] = 0;
	log_set_level(t->cfg.log_enable ? t->cfg.log_level : LOG_FATAL);
	t->tags = (struct log_tags){ .stream = t->cfg.stream, .client = t->cfg.client, .session = t->cfg.session };
	t->pkt_fd = pkt_fd;
	char err[512];
	if (alsa_open(t, err, sizeof err) < 0) {
		log_tagged(LOG_ERROR, &t->tags, "%s", err);
		ipc_send(t->ipc_fd, IPC_TALK_ERROR, 0, err, strlen(err) + 1, -1);
		return -1;
	}
	if (t->cfg.wav_path[0]) {
		t->wav = fopen(t->cfg.wav_path, "wb");
		if (!t->wav)
			log_tagged(LOG_WARN, &t->tags, "cannot record the talk to %s: %s", t->cfg.wav_path,
				   strerror(errno));
		else
			wav_header(t->wav, t->out_rate, t->out_channels, 0);
	}
	if (ev_add(t->loop, pkt_fd, EPOLLIN, on_packets, t) < 0)
		return -1;
	ev_timer_add(t->loop, TICK_MS, talk_tick, t);
	t->started = true;
	ipc_send(t->ipc_fd, IPC_TALK_READY, 0, NULL, 0, -1);
	log_tagged(LOG_INFO, &t->tags, "talk: playing to ALSA device '%s' (%u Hz, %u channel%s)", t->cfg.device,
		   t->out_rate, t->out_channels, t->out_channels == 1 ? "" : "s");
	return 0;
}

static void talk_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct talk *t = arg;
	static struct ipc_talk msg;
	for (;;) {
		struct ipc_hdr hdr;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, &msg, sizeof msg, &rfd);
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO)
			continue;
		if (n < 0) {
			ev_stop(loop);   /* the master is gone */
			return;
		}
		if (hdr.type == IPC_TALK_START && (size_t)n == sizeof msg && rfd >= 0 && !t->started) {
			if (talk_start(t, &msg, rfd) < 0) {
				ev_stop(loop);
				return;
			}
			continue;
		}
		if (hdr.type == IPC_LOG_LEVEL && n == sizeof(int32_t)) {
			int32_t l;
			memcpy(&l, &msg, sizeof l);
			log_set_level(l);
		} else if (hdr.type == IPC_SHUTDOWN) {
			ev_stop(loop);
		} else {
			log_warn("unexpected IPC %s", ipc_type_name(hdr.type));
		}
		if (rfd >= 0)
			close(rfd);
	}
}

static void talk_on_signal(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si)
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			ev_stop(loop);
}

int talk_main(int ipc_fd)
{
	static struct talk t;
	t.ipc_fd = ipc_fd;
	t.pkt_fd = -1;
	log_init("talk", LOG_INFO, true);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	snd_lib_error_set_handler(alsa_log);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	t.loop = ev_create();
	if (!t.loop || sfd < 0)
		return 1;
	jitter_init(&t.jb, 8000, TALK_JITTER_DELAY_US);
	ev_add(t.loop, ipc_fd, EPOLLIN, talk_on_ipc, &t);
	ev_add(t.loop, sfd, EPOLLIN, talk_on_signal, &t);
	ev_run(t.loop);
	if (t.started) {
		/* What the jitter buffer still holds is due within its delay. */
		int64_t end = ev_now_us() + TALK_JITTER_DELAY_US + 20000;
		while (ev_now_us() < end) {
			play_due(&t);
			usleep(TICK_MS * 1000);
		}
		alsa_flush(&t);
		if (t.pcm) {
			snd_pcm_nonblock(t.pcm, 0);
			if (t.out_frames)
				snd_pcm_writei(t.pcm, t.out, t.out_frames);
			snd_pcm_drain(t.pcm);
		}
		send_status(&t);
		struct jitter_stats *s = &t.jb.stats;
		log_tagged(LOG_INFO, &t.tags,
			   "talk ended: %llu packets played, %llu lost, %llu late, %llu duplicates, %llu malformed; "
			   "latency (arrival to ALSA) avg %llu ms, max %lld ms",
			   (unsigned long long)s->played, (unsigned long long)s->lost, (unsigned long long)s->late,
			   (unsigned long long)s->duplicates, (unsigned long long)s->malformed,
			   (unsigned long long)(t.latency_n ? t.latency_sum_us / t.latency_n / 1000 : 0),
			   (long long)(t.latency_max_us / 1000));
	}
	wav_close(&t);
	if (t.pcm)
		snd_pcm_close(t.pcm);
	if (t.dec_open)
		talk_decoder_close(&t.dec);
	swr_free(&t.swr);
	free(t.out);
	if (t.pkt_fd >= 0) {
		ev_del(t.loop, t.pkt_fd);
		close(t.pkt_fd);
	}
	ev_del(t.loop, ipc_fd);
	ev_del(t.loop, sfd);
	close(sfd);
	close(ipc_fd);
	ev_destroy(t.loop);
	return 0;
}
