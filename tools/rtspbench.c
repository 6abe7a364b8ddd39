/* rtspbench — a load client that measures how many RTSP viewers a server
 * sustains.
 *
 * It opens VIEWERS RTSP sessions on one URL (all at once or ramped up at a
 * given rate), plays each for a fixed time over TCP-interleaved or UDP, and
 * checks every RTP packet that arrives: sequence gaps, duplicates and
 * reorders, SSRC, the first sequence number against the PLAY response's
 * RTP-Info, the time from connect() to the first packet and to the first key
 * frame, RTCP sender reports and BYEs, and whether each track kept flowing.
 * One viewer can be told to stop reading for a while (--stall), to see what
 * the server does with a slow consumer.
 *
 * It runs next to the server under test, often on the same small machine,
 * while the server's CPU is being measured, so it has to be cheap: one
 * thread, one epoll set, non-blocking sockets; TCP is read with large recv()
 * calls into one shared buffer and parsed in place (only an incomplete tail
 * is carried over per connection), UDP with recvmmsg(); nothing is allocated
 * per packet and the clock is read once per wake-up. It also runs itself as
 * SCHED_BATCH: on the server's machine an ordinary task woken by each
 * arriving packet would preempt the server in the middle of its fan-out
 * burst, a context switch per wake-up that viewers on other machines never
 * cause; a batch task waits for the server's time slice to end instead
 * (its packets queue up meanwhile, as they would in a NIC). Every server
 * measured gets the same treatment. --gro goes one step further for UDP:
 * see usage().
 *
 * Each viewer: OPTIONS (its Public header picks the keep-alive method, as
 * ffmpeg does; a refusal is tolerated), DESCRIBE, SETUP of every media, an
 * aggregate PLAY, RTP for -t seconds with a keep-alive every timeout/2, then
 * TEARDOWN. Every connect, TLS handshake and response has 10 s; the run ends
 * by itself at ramp time + -t + 15 s at the latest.
 *
 * rtsps:// URLs (RTSP over TLS, default port 322): after connect() each
 * viewer runs a non-blocking OpenSSL client handshake (TLS 1.2 or later, the
 * server's certificate is NOT verified: this is a load tool), then the same
 * RTSP, interleaved or not, through SSL_read()/SSL_write(). Media over UDP
 * (-T udp) works too: only the RTSP connection is encrypted. OpenSSL reads
 * ahead into a buffer of its own, so a connection whose input is left in
 * there when the shared buffer fills up is read again without waiting for
 * epoll (see tls_read()). The plain path pays one branch per recv().
 *
 * Output: a human summary on stderr (unless -q) and, as the last line of
 * stdout, one JSON object:
 *   tls                   whether the URL was rtsps://
 *   viewers, started      asked for / actually started (an interrupted ramp)
 *   tcp_connected         RTSP connections established
 *   connected             sessions whose PLAY was answered 2xx
 *   streaming             viewers that played their whole run with packets on
 *                         every track and no pause over 2 s on any
 *   failed                viewers that ended in an error or did not finish
 *   packets, bytes, mbps  RTP received (bytes of RTP packets; Mbit/s over the
 *                         span from the first PLAY to the last run's end)
 *   lost, viewers_with_loss, lossy_viewers, reordered, duplicates
 *                         from RTP sequence numbers (16-bit wrap handled; a
 *                         late packet fills the hole it left)
 *   max_silence_ms        the longest pause on any track of any viewer
 *   ttfp_ms, ttfk_ms      connect() to the first RTP packet / the first key
 *                         frame start: median, p90, p99, max over the viewers
 *                         (over TLS the handshake is included)
 *   tls_handshake_ms      connect() to the end of the TLS handshake (all
 *                         null without TLS)
 *   keyframe_start_ok     viewers whose first video packets start a key frame
 *   rtcp_sr, rtcp_bye, rtpinfo_seq_mismatch, ssrc_changes, truncated,
 *   teardown_failed, cpu_seconds (this process), errors (grouped, counted)
 *   stall                 null, or the stalled viewer's own figures
 * The stalled viewer is left out of streaming, failed, lost,
 * viewers_with_loss, reordered, duplicates, errors and the exit status; the
 * other counts include it.
 * Exit status 0 when every (other) viewer streamed without loss, 1
 * otherwise, 2 for usage errors.
 */
#include "proto/rtsp.h"
#include "proto/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef RTSPD_VERSION
#define RTSPD_VERSION "dev"
#endif

#define STALL_RCVBUF (64 * 1024)   /* the stalled TCP viewer's receive buffer */

/* ---------------------------------------------------------------- limits */

#define MAX_TRACKS          8
#define IO_TIMEOUT_US       (10 * 1000000LL)   /* connect() and every response */
#define TEARDOWN_WAIT_US    (3 * 1000000LL)    /* a missing TEARDOWN answer is only noted */
#define BYE_LINGER_US       (200 * 1000LL)     /* after the TEARDOWN answer, for the RTCP BYE */
#define GRACE_US            (15 * 1000000LL)   /* the whole run ends by ramp + -t + this */
#define SILENCE_LIMIT_US    (2 * 1000000LL)    /* a longer pause on a track: not "streaming" */
#define TICK_US             (50 * 1000LL)      /* timers (joins, timeouts, keep-alive, stall) */
#define DEFAULT_SESSION_TIMEOUT 60             /* RFC 2326 §12.37 */

/* What a connection may leave unparsed between two reads: one whole
 * interleaved frame ('$', channel, 16-bit length) or one RTSP message
 * (header section + body, the parser's own limits). */
#define CARRY_CAP           (RTSP_MAX_HEADER_BYTES + RTSP_MAX_BODY + 16)
/* One shared receive buffer: a connection's carried tail is copied to its
 * start and recv() fills the rest, so frames are parsed where they landed. */
#define RX_READ_CAP         (256 * 1024)
#define RX_CAP              (CARRY_CAP + RX_READ_CAP)

#define UDP_BATCH           64       /* datagrams per recvmmsg() */
#define UDP_SLOT            4096     /* bytes per datagram; larger ones are truncated (and counted) */
#define UDP_GRO_SLOT        65536    /* with --gro: a whole coalesced burst */
#define UDP_RCVBUF          (1 << 20)

#define TLS_READ_AHEAD      (64 * 1024)   /* OpenSSL's own read buffer per connection */

#define OUT_CAP             4096     /* one request; the URL is limited to fit */
#define MAX_URL             1024
#define EPOLL_BATCH         256
#define MAX_ERROR_KINDS     10

/* ---------------------------------------------------------------- types */

enum transport { TRANSPORT_TCP, TRANSPORT_UDP };

enum codec { CODEC_OTHER, CODEC_H264, CODEC_H265, CODEC_JPEG };

/* Per-track receive statistics. Sequence numbers are tracked with a 64-packet
 * window behind the highest one seen, which tells a late packet (it fills a
 * gap counted earlier) from a duplicate. */
struct track {
	char *control_url;          /* resolved like ffmpeg does, see join_control() */
	bool is_video;
	enum codec codec;
	int rtp_channel, rtcp_channel;   /* TCP interleaved channels, -1 if none */
	int rtp_fd, rtcp_fd;             /* UDP sockets, -1 if none */
	bool has_setup_ssrc;
	uint32_t setup_ssrc;
	long rtpinfo_seq;           /* from PLAY's RTP-Info, -1 when absent */

	uint64_t packets, bytes;
	bool seq_started;
	uint16_t first_seq, max_seq;
	uint64_t seq_window;        /* bit i: max_seq - i was received */
	int64_t missing;            /* lost so far (late arrivals subtract) */
	uint64_t gap_events, duplicates, late, truncated;
	uint32_t ssrc;
	uint64_t ssrc_changes;
	uint64_t sender_reports, byes;
	int64_t first_time, last_time, max_silence;
};

enum viewer_state {
	V_IDLE,          /* not started yet (ramp) */
	V_CONNECTING,
	V_HANDSHAKE,     /* rtsps:// only */
	V_OPTIONS,
	V_DESCRIBE,
	V_SETUP,
	V_PLAY,
	V_PLAYING,
	V_TEARDOWN,
	V_DONE,          /* finished (successfully or not); fds closed */
};

static const char *const state_names[] = {
	"waiting", "connecting", "TLS handshake", "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "playing", "TEARDOWN", "done",
};

/* Whether a stream, looked at from some packet on, starts at a key frame
 * (see probe_feed()). */
struct key_probe {
	bool started, decided, key;
	uint32_t timestamp;
};

enum stall_phase { STALL_NONE, STALL_ACTIVE, STALL_RESUMED };

struct viewer {
	int index;
	enum viewer_state state;
	int fd;                     /* the RTSP connection */
	bool tcp_connected;
	SSL *ssl;                   /* rtsps:// only */
	bool tls_handshake_wants_write;   /* else it wants to read */
	bool tls_read_wants_write;  /* SSL_read() needs the socket writable */
	bool tls_write_wants_read;  /* SSL_write() needs the socket readable */
	bool tls_queued;            /* in tls_ready[]: decrypted input left to read */
	bool tls_broken;            /* a fatal TLS error: no close_notify */

	char *carry;                /* unparsed tail of the input, CARRY_CAP bytes */
	size_t carry_len;
	char out[OUT_CAP];          /* unsent tail of a request (rare: requests are small) */
	size_t out_len, out_off;
	bool want_out;              /* EPOLLOUT is armed */
	bool reading;               /* registered for input (off while stalled) */

	int cseq;
	int pending_cseq;           /* the request of the current step, -1 for none */
	int keepalive_cseq;         /* an outstanding keep-alive, -1 for none */
	int64_t deadline;           /* for connect() or the pending response; 0 = none */

	/* From the server */
	bool public_has_get_parameter;
	char session_id[128];
	int session_timeout;
	char *base_url;             /* Content-Base / Content-Location / request URL */
	char *aggregate_url;        /* PLAY, keep-alive and TEARDOWN go here */
	int ntracks, setup_index;
	struct track *tracks;
	int video_track;            /* index of the first video track, -1 if none */

	/* Timeline (CLOCK_MONOTONIC, microseconds) */
	int64_t connect_time, play_time, run_end_time, next_keepalive;
	int64_t tls_done_time;      /* the TLS handshake finished; 0 = not (yet) */
	int64_t first_packet_time, first_key_time;   /* 0 = not yet */
	struct key_probe first_video;   /* the first video packets: a clean start? */
	bool play_ok, run_completed, failed, disconnected, teardown_failed;
	bool bye_while_playing;     /* the server ended the session before we did */
	bool teardown_answered;
	char error[160];

	/* Only the stalled viewer */
	enum stall_phase stall;
	struct key_probe stall_after_resume;   /* from the first video packet read after the stall */
	struct key_probe stall_after_gap;      /* from the first one after a sequence gap */
};

struct options {
	int viewers;
	double seconds;
	double ramp_rate;           /* joins per second, 0 = all at once */
	enum transport transport;
	bool quiet;
	bool stall_enabled;
	int stall_viewer;
	double stall_after, stall_for;
	bool gro;                   /* UDP_GRO on the RTP sockets */
	bool tls;                   /* an rtsps:// URL */
	const char *url;
};

/* ---------------------------------------------------------------- globals */

static struct options opt = {
	.viewers = 10, .seconds = 10, .ramp_rate = 0, .transport = TRANSPORT_TCP,
	.stall_viewer = -1,
};
static struct viewer *viewers;
static int epfd = -1;
static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static SSL_CTX *ssl_ctx;                /* rtsps:// only */
static char tls_sni[256];               /* the URL's host when it is a name, for SNI */
/* TLS connections whose last read stopped with a full buffer while OpenSSL
 * still held input: no epoll event would come for it (see tls_read()). */
static int *tls_ready, *tls_ready_work;
static int tls_nready;
static int64_t now_us;                  /* read once per wake-up */
static volatile sig_atomic_t interrupted;
static bool debug_gaps;                 /* RTSPBENCH_DEBUG=1: log gaps, and why viewers did not stream */

static char *rx_buf;                    /* RX_CAP bytes, shared by all TCP connections */
static struct rtsp_response parsed_response;   /* ~9 KiB: one, not one per connection */
static struct rtsp_request parsed_request;

static struct mmsghdr udp_msgs[UDP_BATCH];
static struct iovec udp_iov[UDP_BATCH];
static char *udp_buf;                   /* UDP_BATCH * udp_slot */
static size_t udp_slot = UDP_SLOT;
static union {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
} udp_ctl[UDP_BATCH];

/* ---------------------------------------------------------------- small helpers */

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t seconds_to_us(double s)
{
	return (int64_t)llround(s * 1e6);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL) {
		fprintf(stderr, "rtspbench: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (p == NULL) {
		fprintf(stderr, "rtspbench: out of memory\n");
		exit(1);
	}
	return p;
}

static bool starts_with_ci(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && strncasecmp(s, prefix, n) == 0;
}

static bool is_stall_viewer(const struct viewer *v)
{
	return opt.stall_enabled && v->index == opt.stall_viewer;
}

/* Epoll data: viewer index in the high bits, the socket's role in the low
 * byte: 0 = the RTSP connection, 1 + 2 * track (+1 for RTCP) = a UDP socket. */
static uint64_t ev_key(int viewer_index, int role)
{
	return ((uint64_t)viewer_index << 8) | (uint64_t)role;
}

static void epoll_set(int fd, uint64_t key, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };
	if (epoll_ctl(epfd, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) {
		fprintf(stderr, "rtspbench: epoll_ctl: %s\n", strerror(errno));
		exit(1);
	}
}

/* ---------------------------------------------------------------- failing */

static void close_viewer(struct viewer *v);

/* The first error sticks: it is the cause, what follows is consequence. */
__attribute__((format(printf, 2, 3)))
static void fail_viewer(struct viewer *v, const char *fmt, ...)
{
	if (v->state == V_DONE)
		return;
	if (!v->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(v->error, sizeof v->error, fmt, ap);
		va_end(ap);
		v->failed = true;
	}
	if (v->run_end_time == 0)
		v->run_end_time = now_us;
	close_viewer(v);
}

/* ---------------------------------------------------------------- sending */

static void update_interest(struct viewer *v)
{
	/* A stalled TCP viewer is out of the epoll set; set_stalled() puts it
	 * back with the interest it needs then. */
	if (v->fd < 0 || (v->stall == STALL_ACTIVE && opt.transport == TRANSPORT_TCP))
		return;
	bool want_out = v->out_len > v->out_off || v->state == V_CONNECTING;
	bool want_in = v->reading;
	if (v->ssl) {
		/* Either direction of TLS may need the other one. */
		if (v->state == V_HANDSHAKE) {
			want_out = v->tls_handshake_wants_write;
			want_in = !want_out;
		} else {
			if (v->tls_write_wants_read) {
				want_out = false;    /* writable would only wake us for nothing */
				want_in = true;
			}
			if (v->tls_read_wants_write)
				want_out = true;
		}
	}
	uint32_t events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
	epoll_set(v->fd, ev_key(v->index, 0), events, EPOLL_CTL_MOD);
	v->want_out = want_out;
}

/* ---------------------------------------------------------------- TLS */

/* What went wrong in an SSL call that returned err (errno_saved: errno
 * right after it); empties OpenSSL's error queue, which is shared by all
 * connections: a stale entry would turn the next WANT_READ into an error. */
static const char *tls_error_text(int err, int errno_saved, char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (e) {
		const char *reason = ERR_reason_error_string(e);
		if (reason)
			snprintf(buf, len, "%s", reason);
		else
			ERR_error_string_n(e, buf, len);
	} else if (err == SSL_ERROR_SYSCALL && errno_saved == ECONNRESET) {
		snprintf(buf, len, "connection reset by the server");
	} else if (err == SSL_ERROR_SYSCALL && errno_saved) {
		snprintf(buf, len, "%s", strerror(errno_saved));
	} else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN) {
		snprintf(buf, len, "connection closed by the server");
	} else {
		snprintf(buf, len, "SSL error %d", err);
	}
	ERR_clear_error();
	return buf;
}

static void tls_queue(struct viewer *v)
{
	if (!v->tls_queued) {
		v->tls_queued = true;
		tls_ready[tls_nready++] = v->index;
	}
}

/* The send() of TLS: SSL_write() with partial writes allowed and a buffer
 * that may move or grow between retries (requests are appended to out[]).
 * Returns bytes written, or 0 for "try again" (want_read says in which
 * direction), or -1 with the viewer failed. */
static ssize_t tls_write(struct viewer *v, const char *data, size_t len)
{
	errno = 0;   /* meaningful after SSL_ERROR_SYSCALL only if set by this call */
	int n = SSL_write(v->ssl, data, (int)len);
	if (n > 0)
		return n;
	int saved = errno;
	int err = SSL_get_error(v->ssl, n);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		bool wants_read = err == SSL_ERROR_WANT_READ;
		if (wants_read != v->tls_write_wants_read) {
			v->tls_write_wants_read = wants_read;
			update_interest(v);
		}
		return 0;
	}
	char why[160];
	v->tls_broken = true;
	fail_viewer(v, "%s: SSL_write: %s", state_names[v->state],
		    tls_error_text(err, saved, why, sizeof why));
	return -1;
}

static void flush_out(struct viewer *v)
{
	while (v->out_off < v->out_len) {
		if (v->ssl) {
			ssize_t n = tls_write(v, v->out + v->out_off, v->out_len - v->out_off);
			if (n < 0)
				return;
			if (n == 0) {
				if (!v->want_out && !v->tls_write_wants_read)
					update_interest(v);
				return;
			}
			v->out_off += (size_t)n;
			continue;
		}
		ssize_t n = send(v->fd, v->out + v->out_off, v->out_len - v->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			v->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!v->want_out)
				update_interest(v);
			return;
		}
		fail_viewer(v, "%s: send: %s", state_names[v->state],
			    n < 0 ? strerror(errno) : "connection closed");
		return;
	}
	v->out_len = v->out_off = 0;
	if (v->ssl && v->tls_write_wants_read) {
		v->tls_write_wants_read = false;
		update_interest(v);
	} else if (v->want_out) {
		update_interest(v);
	}
}

/* Queues one request and tries to send it at once. extra_fmt formats any
 * further header lines, each ending in CRLF. Returns its CSeq, or -1. */
__attribute__((format(printf, 4, 5)))
static int send_request(struct viewer *v, const char *method, const char *url, const char *extra_fmt, ...)
{
	char extra[1536];
	va_list ap;
	va_start(ap, extra_fmt);
	int ne = vsnprintf(extra, sizeof extra, extra_fmt, ap);
	va_end(ap);
	if (ne < 0 || (size_t)ne >= sizeof extra) {
		fail_viewer(v, "%s: request headers too long", method);
		return -1;
	}
	int cseq = ++v->cseq;
	char session[160] = "";
	if (v->session_id[0])
		snprintf(session, sizeof session, "Session: %s\r\n", v->session_id);
	size_t room = sizeof v->out - v->out_len;
	int n = snprintf(v->out + v->out_len, room,
			 "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: rtspbench/%s\r\n%s%s\r\n",
			 method, url, cseq, RTSPD_VERSION, session, extra);
	if (n < 0 || (size_t)n >= room) {
		fail_viewer(v, "%s: request does not fit the output buffer", method);
		return -1;
	}
	v->out_len += (size_t)n;
	flush_out(v);
	return v->state == V_DONE ? -1 : cseq;
}

static void send_reply(struct viewer *v, int status, const char *reason, int cseq)
{
	size_t room = sizeof v->out - v->out_len;
	int n = snprintf(v->out + v->out_len, room, "RTSP/1.0 %d %s\r\nCSeq: %d\r\n%s%s%s\r\n",
			 status, reason, cseq, v->session_id[0] ? "Session: " : "", v->session_id,
			 v->session_id[0] ? "\r\n" : "");
	if (n > 0 && (size_t)n < room) {
		v->out_len += (size_t)n;
		flush_out(v);
	}
}

/* ---------------------------------------------------------------- closing */

static void close_udp(struct viewer *v)
{
	for (int i = 0; i < v->ntracks; i++) {
		struct track *t = &v->tracks[i];
		if (t->rtp_fd >= 0)
			close(t->rtp_fd);
		if (t->rtcp_fd >= 0)
			close(t->rtcp_fd);
		t->rtp_fd = t->rtcp_fd = -1;
	}
}

/* close() also removes the fds from the epoll set. */
static void close_viewer(struct viewer *v)
{
	if (v->ssl) {
		/* One close_notify, sent if the socket takes it; no waiting for
		 * the server's. */
		if (!v->tls_broken && SSL_is_init_finished(v->ssl))
			SSL_shutdown(v->ssl);
		SSL_free(v->ssl);
		ERR_clear_error();
		v->ssl = NULL;
	}
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	close_udp(v);
	free(v->carry);
	v->carry = NULL;
	v->carry_len = 0;
	v->state = V_DONE;
}

/* ---------------------------------------------------------------- RTP inspection */

/* What an RTP payload tells about where a decoder could start.
 *   KEY      it starts a key frame or carries a parameter set. H.264 (RFC
 *            6184): IDR (5), SPS (7), PPS (8), a STAP-A holding one, the
 *            first FU-A fragment of an IDR. H.265 (RFC 7798): IRAP pictures
 *            (16..21), VPS/SPS/PPS (32..34), in an aggregation packet (48)
 *            or the first fragment of a fragmentation unit (49). JPEG (RFC
 *            2435): every frame is a key frame; fragment offset 0 starts one.
 *            Codecs not inspected: every packet.
 *   NONKEY   a slice of another picture, or the middle of a fragmented NAL.
 *   NEUTRAL  SEI, access unit delimiters and the like, which an encoder puts
 *            in front of the slices of an access unit (x264 writes an SEI
 *            before its first IDR): the answer comes with the next packet. */
enum frame_start { FS_NEUTRAL, FS_KEY, FS_NONKEY };

static enum frame_start h264_nal(unsigned type)
{
	if (type == 5 || type == 7 || type == 8)
		return FS_KEY;
	return type >= 1 && type <= 4 ? FS_NONKEY : FS_NEUTRAL;
}

static enum frame_start h265_nal(unsigned type)
{
	if ((type >= 16 && type <= 21) || (type >= 32 && type <= 34))
		return FS_KEY;
	return type <= 31 ? FS_NONKEY : FS_NEUTRAL;
}

/* The NALs of an aggregation packet, from offset i: 16-bit size + NAL. */
static enum frame_start aggregated_nals(enum codec codec, const uint8_t *p, size_t n, size_t i)
{
	enum frame_start result = FS_NEUTRAL;
	while (i + 2 < n) {
		size_t size = (size_t)p[i] << 8 | p[i + 1];
		if (size > 0) {
			enum frame_start fs = codec == CODEC_H264 ? h264_nal(p[i + 2] & 0x1f)
								  : h265_nal((p[i + 2] >> 1) & 0x3f);
			if (fs == FS_KEY)
				return FS_KEY;
			if (fs == FS_NONKEY)
				result = FS_NONKEY;
		}
		i += 2 + size;
	}
	return result;
}

static enum frame_start classify_payload(enum codec codec, const uint8_t *p, size_t n)
{
	if (n == 0)
		return FS_NEUTRAL;
	switch (codec) {
	case CODEC_H264: {
		unsigned type = p[0] & 0x1f;
		if (type == 24)                 /* STAP-A */
			return aggregated_nals(codec, p, n, 1);
		if (type == 28)                 /* FU-A: start bit + type of the fragmented NAL */
			return n > 1 && (p[1] & 0x80) ? h264_nal(p[1] & 0x1f) : FS_NONKEY;
		return h264_nal(type);
	}
	case CODEC_H265: {
		if (n < 3)
			return FS_NEUTRAL;
		unsigned type = (p[0] >> 1) & 0x3f;
		if (type == 48)                 /* AP: 2-byte header first */
			return aggregated_nals(codec, p, n, 2);
		if (type == 49)                 /* FU: 2-byte header, FU header (S, E, type) */
			return (p[2] & 0x80) ? h265_nal(p[2] & 0x3f) : FS_NONKEY;
		return h265_nal(type);
	}
	case CODEC_JPEG:
		return n >= 4 && p[1] == 0 && p[2] == 0 && p[3] == 0 ? FS_KEY : FS_NONKEY;
	case CODEC_OTHER:
		break;
	}
	return FS_KEY;
}

/* Feeds a key_probe: leading NEUTRAL packets of the same access unit (same
 * RTP timestamp) defer the decision to the packets after them. */
static void probe_feed(struct key_probe *kp, enum frame_start fs, uint32_t timestamp)
{
	if (kp->decided)
		return;
	if (!kp->started) {
		kp->started = true;
		kp->timestamp = timestamp;
	} else if (timestamp != kp->timestamp) {
		/* A whole access unit without a slice: not a clean start. */
		kp->decided = true;
		kp->key = fs == FS_KEY;
		return;
	}
	if (fs != FS_NEUTRAL) {
		kp->decided = true;
		kp->key = fs == FS_KEY;
	}
}

/* Returns the sequence distance from the highest sequence number so far
 * (1 = in order, >1 = a gap, <=0 = duplicate or late). */
static int account_seq(struct track *t, uint16_t seq)
{
	if (!t->seq_started) {
		t->seq_started = true;
		t->first_seq = t->max_seq = seq;
		t->seq_window = 1;
		return 1;
	}
	int d = (int16_t)(uint16_t)(seq - t->max_seq);
	if (d > 0) {
		if (d > 1) {
			t->missing += d - 1;
			t->gap_events++;
		}
		t->seq_window = d >= 64 ? 1 : (t->seq_window << d) | 1;
		t->max_seq = seq;
	} else if (d == 0) {
		t->duplicates++;
	} else {
		int back = -d;
		uint64_t bit = back < 64 ? (uint64_t)1 << back : 0;
		if (bit && (t->seq_window & bit)) {
			t->duplicates++;
		} else {
			t->seq_window |= bit;
			t->late++;
			if (t->missing > 0)
				t->missing--;
		}
	}
	return d;
}

static void on_rtp(struct viewer *v, int track_index, const uint8_t *p, size_t n)
{
	if (n < 12 || (p[0] >> 6) != 2)
		return;
	struct track *t = &v->tracks[track_index];
	uint16_t seq = (uint16_t)(p[2] << 8 | p[3]);
	uint32_t ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];

	if (t->packets > 0 && ssrc != t->ssrc) {
		/* A new source: its numbering has nothing to do with the old one's. */
		t->ssrc_changes++;
		t->seq_started = false;
	}
	t->ssrc = ssrc;
	int64_t now = now_us;
	if (t->packets == 0) {
		t->first_time = now;
		if (v->first_packet_time == 0)
			v->first_packet_time = now;
		t->max_silence = now - v->first_packet_time;
	} else if (now - t->last_time > t->max_silence) {
		t->max_silence = now - t->last_time;
	}
	t->last_time = now;
	t->packets++;
	t->bytes += n;
	uint16_t previous_max = t->max_seq;
	int d = account_seq(t, seq);
	if (d != 1 && t->packets > 1 && debug_gaps)
		fprintf(stderr, "rtspbench: viewer %d track %d: seq %u after %u (%+d) at %.3f s after PLAY\n",
			v->index, track_index, seq, previous_max, d,
			v->play_time ? (double)(now - v->play_time) / 1e6 : -1.0);

	/* Key frames are looked for on the first video track, or on any track
	 * of an audio-only stream (where the first packet is all a player needs). */
	bool is_key_track = v->video_track < 0 || track_index == v->video_track;
	if (!is_key_track)
		return;
	bool stall_probing = v->stall == STALL_RESUMED && !v->stall_after_gap.decided;
	if (v->first_key_time != 0 && v->first_video.decided && !stall_probing)
		return;

	/* Payload: after the CSRCs and any header extension, before padding. */
	size_t off = 12 + 4u * (p[0] & 0x0f);
	if ((p[0] & 0x10) && off + 4 <= n)
		off += 4 + 4u * ((size_t)p[off + 2] << 8 | p[off + 3]);
	size_t end = n;
	if ((p[0] & 0x20) && n > 12)
		end = p[n - 1] <= n ? n - p[n - 1] : 0;
	enum frame_start fs = FS_KEY;
	if (v->video_track >= 0)
		fs = off < end ? classify_payload(t->codec, p + off, end - off) : FS_NEUTRAL;
	uint32_t timestamp = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];

	probe_feed(&v->first_video, fs, timestamp);
	if (fs == FS_KEY && v->first_key_time == 0)
		v->first_key_time = now;
	if (stall_probing) {
		probe_feed(&v->stall_after_resume, fs, timestamp);
		if (d > 1 || v->stall_after_gap.started)
			probe_feed(&v->stall_after_gap, fs, timestamp);
	}
}

/* Counts sender reports and BYEs in a compound RTCP packet (RFC 3550 §6.1). */
static void on_rtcp(struct viewer *v, int track_index, const uint8_t *p, size_t n)
{
	struct track *t = &v->tracks[track_index];
	size_t i = 0;
	while (i + 4 <= n) {
		if ((p[i] >> 6) != 2)
			return;
		unsigned type = p[i + 1];
		size_t len = 4 + 4 * ((size_t)p[i + 2] << 8 | p[i + 3]);
		if (type == 200)
			t->sender_reports++;
		else if (type == 203) {
			t->byes++;
			if (v->state == V_PLAYING)
				v->bye_while_playing = true;
		}
		i += len;
	}
}

/* ---------------------------------------------------------------- SDP and URLs */

static bool is_absolute_url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == ':')
			return i > 0 && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/';
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		      || c == '+' || c == '-' || c == '.'))
			return false;
	}
	return false;
}

/* A track's URL the way libavformat builds it (and most servers expect it):
 * an absolute control URL as it is, "*" the base itself, anything else the
 * base + '/' + control, without doubling a '/' the base already ends with. */
static char *join_control(const char *base, const char *control, size_t n)
{
	if (n == 0 || (n == 1 && control[0] == '*'))
		return xstrndup(base, strlen(base));
	if (is_absolute_url(control, n))
		return xstrndup(control, n);
	size_t bl = strlen(base);
	bool slash = bl > 0 && base[bl - 1] == '/';
	char *s = malloc(bl + 1 + n + 1);
	if (s == NULL) {
		fprintf(stderr, "rtspbench: out of memory\n");
		exit(1);
	}
	memcpy(s, base, bl);
	size_t k = bl;
	if (!slash)
		s[k++] = '/';
	memcpy(s + k, control, n);
	s[k + n] = '\0';
	return s;
}

static enum codec codec_of(const char *name, size_t n)
{
	if (starts_with_ci(name, n, "H264/") || (n == 4 && strncasecmp(name, "H264", 4) == 0))
		return CODEC_H264;
	if (starts_with_ci(name, n, "H265/") || starts_with_ci(name, n, "HEVC/"))
		return CODEC_H265;
	if (starts_with_ci(name, n, "JPEG/"))
		return CODEC_JPEG;
	return CODEC_OTHER;
}

/* Reads what the benchmark needs from the SDP: the media sections, their
 * first payload type's codec and their control attribute, and a
 * session-level control. Returns the number of tracks (0 = none usable). */
static int parse_sdp(struct viewer *v, const char *sdp, size_t len)
{
	struct track *tracks = xcalloc(MAX_TRACKS, sizeof *tracks);
	int ntracks = 0;
	int pt[MAX_TRACKS];
	const char *control[MAX_TRACKS];
	size_t control_len[MAX_TRACKS];
	const char *session_control = NULL;
	size_t session_control_len = 0;
	bool in_ignored_media = false;

	const char *p = sdp, *end = sdp + len;
	while (p < end) {
		const char *eol = p;
		while (eol < end && *eol != '\n' && *eol != '\r')
			eol++;
		size_t n = (size_t)(eol - p);
		if (n >= 2 && p[1] == '=') {
			if (p[0] == 'm') {
				in_ignored_media = ntracks == MAX_TRACKS;
				if (!in_ignored_media) {
					struct track *t = &tracks[ntracks];
					t->is_video = starts_with_ci(p + 2, n - 2, "video ");
					/* m=<media> <port> <proto> <fmt> ... */
					const char *q = p + 2;
					int field = 0;
					pt[ntracks] = -1;
					while (q < eol && field < 3) {
						while (q < eol && *q != ' ')
							q++;
						while (q < eol && *q == ' ')
							q++;
						field++;
					}
					if (q < eol && *q >= '0' && *q <= '9')
						pt[ntracks] = atoi(q);
					if (pt[ntracks] == 26)
						t->codec = CODEC_JPEG;   /* static payload type */
					control[ntracks] = NULL;
					control_len[ntracks] = 0;
					ntracks++;
				}
			} else if (starts_with_ci(p, n, "a=control:")) {
				const char *c = p + 10;
				size_t cl = (size_t)(eol - c);
				while (cl > 0 && c[cl - 1] == ' ')
					cl--;
				if (ntracks == 0) {
					session_control = c;
					session_control_len = cl;
				} else if (!in_ignored_media) {
					control[ntracks - 1] = c;
					control_len[ntracks - 1] = cl;
				}
			} else if (starts_with_ci(p, n, "a=rtpmap:") && ntracks > 0 && !in_ignored_media) {
				const char *q = p + 9;
				int map_pt = atoi(q);
				while (q < eol && *q != ' ')
					q++;
				while (q < eol && *q == ' ')
					q++;
				if (map_pt == pt[ntracks - 1])
					tracks[ntracks - 1].codec = codec_of(q, (size_t)(eol - q));
			}
		}
		p = eol;
		while (p < end && (*p == '\n' || *p == '\r'))
			p++;
	}

	v->tracks = tracks;
	v->ntracks = ntracks;
	v->video_track = -1;
	for (int i = 0; i < ntracks; i++) {
		struct track *t = &tracks[i];
		t->control_url = join_control(v->base_url, control[i], control_len[i]);
		t->rtp_channel = t->rtcp_channel = -1;
		t->rtp_fd = t->rtcp_fd = -1;
		t->rtpinfo_seq = -1;
		if (t->is_video && v->video_track < 0)
			v->video_track = i;
	}
	/* ffmpeg honours a session-level control only when it is absolute. */
	if (session_control && is_absolute_url(session_control, session_control_len))
		v->aggregate_url = xstrndup(session_control, session_control_len);
	else
		v->aggregate_url = xstrndup(v->base_url, strlen(v->base_url));
	return ntracks;
}

/* "url=rtsp://h/p/trackID=0;seq=123;rtptime=456, url=...": stores each
 * entry's seq on the track whose control URL it names (exactly, or as a
 * suffix, since servers differ in how much of the URL they repeat); an entry
 * naming no track goes to the track at its position. */
static void parse_rtp_info(struct viewer *v, const char *value)
{
	int position = 0;
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		/* The URL may contain ',' or ';' only in theory; entries are split
		 * at ",url=" or at a ',' followed by spaces and "url=". */
		const char *entry = p;
		const char *next = NULL;
		for (const char *q = p; *q; q++) {
			if (*q == ',') {
				const char *r = q + 1;
				while (*r == ' ')
					r++;
				if (strncasecmp(r, "url=", 4) == 0) {
					next = q;
					break;
				}
			}
		}
		size_t entry_len = next ? (size_t)(next - entry) : strlen(entry);
		const char *url = NULL;
		size_t url_len = 0;
		long seq = -1;
		const char *f = entry, *fend = entry + entry_len;
		while (f < fend) {
			while (f < fend && (*f == ' ' || *f == ';'))
				f++;
			const char *fe = f;
			if (strncasecmp(f, "url=", 4) == 0) {
				/* the URL runs to ";seq=" / ";rtptime=" or the entry's end */
				fe = f + 4;
				while (fe < fend && !(*fe == ';' && (strncasecmp(fe + 1, "seq=", 4) == 0
								 || strncasecmp(fe + 1, "rtptime=", 8) == 0)))
					fe++;
				url = f + 4;
				url_len = (size_t)(fe - url);
			} else {
				while (fe < fend && *fe != ';')
					fe++;
				if (strncasecmp(f, "seq=", 4) == 0)
					seq = strtol(f + 4, NULL, 10);
			}
			f = fe;
		}
		int target = -1;
		for (int i = 0; url && i < v->ntracks && target < 0; i++) {
			const char *cu = v->tracks[i].control_url;
			size_t cl = strlen(cu);
			if (cl == url_len && memcmp(cu, url, cl) == 0)
				target = i;
		}
		for (int i = 0; url && i < v->ntracks && target < 0; i++) {
			const char *cu = v->tracks[i].control_url;
			size_t cl = strlen(cu);
			if (url_len > 0 && cl >= url_len && memcmp(cu + cl - url_len, url, url_len) == 0)
				target = i;
		}
		if (target < 0 && position < v->ntracks)
			target = position;
		if (target >= 0 && seq >= 0 && seq <= 65535)
			v->tracks[target].rtpinfo_seq = seq;
		position++;
		if (!next)
			break;
		p = next + 1;
	}
}

/* ---------------------------------------------------------------- UDP ports */

/* Binds an RTP/RTCP socket pair on consecutive ports, RTP even (RFC 3550
 * §11), letting the kernel pick the ports so that parallel runs and the
 * server's own port range are not walked over. */
static int open_udp_pair(struct viewer *v, struct track *t, int track_index, int *rtp_port)
{
	int family = server_addr.ss_family;
	for (int attempt = 0; attempt < 64; attempt++) {
		int a = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (a < 0)
			return -errno;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t sl;
		if (family == AF_INET6) {
			((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
			sl = sizeof(struct sockaddr_in6);
		} else {
			((struct sockaddr_in *)&ss)->sin_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
			sl = sizeof(struct sockaddr_in);
		}
		if (bind(a, (struct sockaddr *)&ss, sl) < 0 || getsockname(a, (struct sockaddr *)&ss, &sl) < 0) {
			int e = errno;
			close(a);
			return -e;
		}
		in_port_t *port = family == AF_INET6 ? &((struct sockaddr_in6 *)&ss)->sin6_port
						     : &((struct sockaddr_in *)&ss)->sin_port;
		int p = ntohs(*port);
		if (p % 2 != 0 || p >= 65535) {
			close(a);
			continue;
		}
		int b = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (b < 0) {
			int e = errno;
			close(a);
			return -e;
		}
		*port = htons((in_port_t)(p + 1));
		if (bind(b, (struct sockaddr *)&ss, sl) < 0) {
			close(a);
			close(b);
			continue;
		}
		/* A roomy buffer, so that the tool's own scheduling does not show
		 * up as loss; but not for the stalled viewer, which should look
		 * like a slow client, not like one with seconds of buffer. */
		if (!is_stall_viewer(v)) {
			int size = UDP_RCVBUF;
			setsockopt(a, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
		}
		if (opt.gro) {
			int one = 1;
			if (setsockopt(a, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) {
				int e = errno;
				close(a);
				close(b);
				return -e;
			}
		}
		t->rtp_fd = a;
		t->rtcp_fd = b;
		epoll_set(a, ev_key(v->index, 1 + 2 * track_index), EPOLLIN, EPOLL_CTL_ADD);
		epoll_set(b, ev_key(v->index, 2 + 2 * track_index), EPOLLIN, EPOLL_CTL_ADD);
		*rtp_port = p;
		return 0;
	}
	return -EADDRINUSE;
}

/* ---------------------------------------------------------------- the RTSP steps */

static void send_setup(struct viewer *v)
{
	struct track *t = &v->tracks[v->setup_index];
	char transport[160];
	if (opt.transport == TRANSPORT_TCP) {
		snprintf(transport, sizeof transport, "RTP/AVP/TCP;unicast;interleaved=%d-%d",
			 2 * v->setup_index, 2 * v->setup_index + 1);
	} else {
		int port = 0;
		int r = open_udp_pair(v, t, v->setup_index, &port);
		if (r < 0) {
			fail_viewer(v, "SETUP: no UDP port pair: %s", strerror(-r));
			return;
		}
		snprintf(transport, sizeof transport, "RTP/AVP;unicast;client_port=%d-%d", port, port + 1);
	}
	v->state = V_SETUP;
	v->pending_cseq = send_request(v, "SETUP", t->control_url, "Transport: %s\r\n", transport);
	v->deadline = now_us + IO_TIMEOUT_US;
}

static void send_play(struct viewer *v)
{
	v->state = V_PLAY;
	v->pending_cseq = send_request(v, "PLAY", v->aggregate_url, "Range: npt=0.000-\r\n");
	v->deadline = now_us + IO_TIMEOUT_US;
}

static void send_describe(struct viewer *v)
{
	v->state = V_DESCRIBE;
	v->pending_cseq = send_request(v, "DESCRIBE", opt.url, "Accept: application/sdp\r\n");
	v->deadline = now_us + IO_TIMEOUT_US;
}

static void begin_teardown(struct viewer *v)
{
	if (v->run_end_time == 0)
		v->run_end_time = now_us;
	v->state = V_TEARDOWN;
	v->pending_cseq = send_request(v, "TEARDOWN", v->aggregate_url, "%s", "");
	v->deadline = now_us + TEARDOWN_WAIT_US;
}

static void send_keepalive(struct viewer *v)
{
	const char *method = v->public_has_get_parameter ? "GET_PARAMETER" : "OPTIONS";
	v->keepalive_cseq = send_request(v, method, v->aggregate_url, "%s", "");
	v->next_keepalive = now_us + (int64_t)v->session_timeout * 1000000 / 2;
}

static bool status_ok(int status)
{
	return status >= 200 && status < 300;
}

static void on_response(struct viewer *v, const struct rtsp_response *r)
{
	if (v->keepalive_cseq >= 0 && r->cseq == v->keepalive_cseq) {
		v->keepalive_cseq = -1;
		if (!status_ok(r->status) && v->state == V_PLAYING)
			fail_viewer(v, "keep-alive: %d %s", r->status, r->reason);
		return;
	}
	/* Responses without CSeq are taken for the current step's. */
	if (r->cseq >= 0 && r->cseq != v->pending_cseq)
		return;
	v->pending_cseq = -1;
	v->deadline = 0;

	switch (v->state) {
	case V_OPTIONS: {
		/* A server may not implement OPTIONS (some cameras answer 501):
		 * DESCRIBE anyway. Any other refusal (404, 503...) is about the
		 * stream, and a server often closes the connection after it. */
		if (!status_ok(r->status) && r->status != 405 && r->status != 501) {
			fail_viewer(v, "OPTIONS: %d %s", r->status, r->reason);
			return;
		}
		const char *pub = rtsp_response_header(r, "Public");
		v->public_has_get_parameter = status_ok(r->status) && pub && strstr(pub, "GET_PARAMETER");
		send_describe(v);
		return;
	}
	case V_DESCRIBE: {
		if (!status_ok(r->status)) {
			fail_viewer(v, "DESCRIBE: %d %s", r->status, r->reason);
			return;
		}
		const char *base = rtsp_response_header(r, "Content-Base");
		if (!base || !*base)
			base = rtsp_response_header(r, "Content-Location");
		if (!base || !*base)
			base = opt.url;
		v->base_url = xstrndup(base, strlen(base));
		if (r->body_len == 0 || parse_sdp(v, r->body, r->body_len) == 0) {
			fail_viewer(v, "DESCRIBE: no media in the SDP");
			return;
		}
		v->setup_index = 0;
		send_setup(v);
		return;
	}
	case V_SETUP: {
		if (!status_ok(r->status)) {
			fail_viewer(v, "SETUP: %d %s", r->status, r->reason);
			return;
		}
		const char *session = rtsp_response_header(r, "Session");
		if (!session) {
			fail_viewer(v, "SETUP: no Session header");
			return;
		}
		if (!v->session_id[0]) {
			if (rtsp_parse_session(session, v->session_id, sizeof v->session_id) < 0) {
				fail_viewer(v, "SETUP: bad Session header");
				return;
			}
			int timeout = rtsp_session_timeout(session);
			v->session_timeout = timeout > 0 ? timeout : DEFAULT_SESSION_TIMEOUT;
		}
		struct track *t = &v->tracks[v->setup_index];
		const char *value = rtsp_response_header(r, "Transport");
		struct rtsp_transport tr;
		if (!value || rtsp_parse_transports(value, &tr, 1) < 1) {
			fail_viewer(v, "SETUP: missing or unusable Transport in the response");
			return;
		}
		bool tcp = opt.transport == TRANSPORT_TCP;
		if ((tr.lower == RTSP_LOWER_TCP) != tcp || (tcp && tr.interleaved[0] < 0)) {
			fail_viewer(v, "SETUP: the server answered with another transport: %s", value);
			return;
		}
		if (tcp) {
			t->rtp_channel = tr.interleaved[0];
			t->rtcp_channel = tr.interleaved[1];
		}
		t->has_setup_ssrc = tr.has_ssrc;
		t->setup_ssrc = tr.ssrc;
		if (++v->setup_index < v->ntracks)
			send_setup(v);
		else
			send_play(v);
		return;
	}
	case V_PLAY: {
		if (!status_ok(r->status)) {
			fail_viewer(v, "PLAY: %d %s", r->status, r->reason);
			return;
		}
		const char *info = rtsp_response_header(r, "RTP-Info");
		if (info)
			parse_rtp_info(v, info);
		v->state = V_PLAYING;
		v->play_ok = true;
		v->play_time = now_us;
		v->next_keepalive = now_us + (int64_t)v->session_timeout * 1000000 / 2;
		return;
	}
	case V_TEARDOWN:
		if (!status_ok(r->status)) {
			v->teardown_failed = true;
			close_viewer(v);
			return;
		}
		/* Servers send RTCP BYE around their answer: linger a moment
		 * (or until they close) so that it is counted. */
		v->teardown_answered = true;
		v->deadline = now_us + BYE_LINGER_US;
		return;
	default:
		return;
	}
}

/* A request from the server (RFC 2326 §9: a client must answer them). */
static void on_server_request(struct viewer *v, const struct rtsp_request *req)
{
	bool known = !strcmp(req->method, "OPTIONS") || !strcmp(req->method, "GET_PARAMETER")
		|| !strcmp(req->method, "SET_PARAMETER");
	if (known)
		send_reply(v, 200, "OK", req->cseq);
	else
		send_reply(v, 501, "Not Implemented", req->cseq);
}

/* ---------------------------------------------------------------- TCP input */

static int track_of_channel(const struct viewer *v, int channel, bool *rtcp)
{
	for (int i = 0; i < v->ntracks; i++) {
		if (v->tracks[i].rtp_channel == channel) {
			*rtcp = false;
			return i;
		}
		if (v->tracks[i].rtcp_channel == channel) {
			*rtcp = true;
			return i;
		}
	}
	return -1;
}

/* Parses buf[0..len) in place: interleaved frames and RTSP messages in any
 * order. Returns how many bytes were consumed; the rest is an incomplete
 * frame or message. On a protocol error the viewer fails (state V_DONE). */
static size_t parse_input(struct viewer *v, char *buf, size_t len)
{
	size_t pos = 0;
	while (pos < len && v->state != V_DONE) {
		unsigned char c = (unsigned char)buf[pos];
		if (c == '$') {
			if (len - pos < 4)
				break;
			const uint8_t *h = (const uint8_t *)buf + pos;
			size_t n = (size_t)h[2] << 8 | h[3];
			if (len - pos < 4 + n)
				break;
			bool rtcp;
			int track = track_of_channel(v, h[1], &rtcp);
			if (track >= 0) {
				if (rtcp)
					on_rtcp(v, track, h + 4, n);
				else
					on_rtp(v, track, h + 4, n);
			}
			pos += 4 + n;
			continue;
		}
		if (c == '\r' || c == '\n') {
			pos++;
			continue;
		}
		size_t rest = len - pos;
		if (rest < 5 && memcmp(buf + pos, "RTSP/", rest) == 0)
			break;
		int r;
		if (rest >= 5 && memcmp(buf + pos, "RTSP/", 5) == 0) {
			r = rtsp_parse_response(buf + pos, rest, &parsed_response);
			if (r > 0)
				on_response(v, &parsed_response);
		} else {
			r = rtsp_parse_request(buf + pos, rest, &parsed_request);
			if (r > 0)
				on_server_request(v, &parsed_request);
		}
		if (r == 0)
			break;
		if (r < 0) {
			fail_viewer(v, "%s: malformed data from the server (byte 0x%02x)",
				    state_names[v->state], c);
			break;
		}
		pos += (size_t)r;
	}
	return pos;
}

static void on_connection_lost(struct viewer *v, const char *why)
{
	v->disconnected = v->state == V_PLAYING;
	if (v->state == V_TEARDOWN) {
		/* The server may close right after answering (or instead of it). */
		close_viewer(v);
		return;
	}
	if (v->state == V_PLAYING)
		fail_viewer(v, "%s after %.1f s of play", why, (double)(now_us - v->play_time) / 1e6);
	else
		fail_viewer(v, "%s: %s", state_names[v->state], why);
}

/* Parses buf[0..len) and keeps the unparsed tail; false when the viewer
 * is done. */
static bool consume_input(struct viewer *v, char *buf, size_t len)
{
	size_t used = parse_input(v, buf, len);
	if (v->state == V_DONE)
		return false;
	size_t left = len - used;
	if (left > CARRY_CAP) {
		fail_viewer(v, "%s: message or frame larger than %d bytes", state_names[v->state], CARRY_CAP);
		return false;
	}
	memcpy(v->carry, buf + used, left);
	v->carry_len = left;
	return true;
}

/* The TLS counterpart of read_tcp(): SSL_read() until the shared buffer is
 * full or OpenSSL wants the socket. SSL_read() returns one record at most,
 * from what OpenSSL read ahead from the socket into its own buffer; so when
 * the buffer fills up, decrypted or still encrypted input may be left in
 * OpenSSL with nothing left in the socket, and epoll would never report it:
 * such a connection goes into tls_ready[] and the main loop reads it again
 * right after the current batch of events. */
static void tls_read(struct viewer *v)
{
	char *buf = rx_buf;
	size_t have = v->carry_len;
	if (have)
		memcpy(buf, v->carry, have);
	size_t len = have;
	int err = SSL_ERROR_NONE, saved = 0;
	while (len < RX_CAP) {
		size_t room = RX_CAP - len;
		errno = 0;
		int n = SSL_read(v->ssl, buf + len, room > INT_MAX ? INT_MAX : (int)room);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		saved = errno;
		err = SSL_get_error(v->ssl, n);
		break;
	}
	/* What arrived before an error or the server's close is parsed first
	 * (a TEARDOWN answer right before the close, say). */
	if (len > have && !consume_input(v, buf, len))
		return;
	bool wants_write = err == SSL_ERROR_WANT_WRITE;
	if (wants_write != v->tls_read_wants_write) {
		v->tls_read_wants_write = wants_write;
		update_interest(v);
	}
	switch (err) {
	case SSL_ERROR_NONE:
		if (SSL_has_pending(v->ssl))
			tls_queue(v);
		return;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		on_connection_lost(v, "connection closed by the server");
		return;
	default: {
		char why[160];
		v->tls_broken = true;
		on_connection_lost(v, tls_error_text(err, saved, why, sizeof why));
		return;
	}
	}
}

static void read_tcp(struct viewer *v)
{
	if (v->ssl) {
		tls_read(v);
		return;
	}
	char *buf = rx_buf;
	size_t have = v->carry_len;
	if (have)
		memcpy(buf, v->carry, have);
	ssize_t n = recv(v->fd, buf + have, RX_CAP - have, 0);
	if (n == 0) {
		on_connection_lost(v, "connection closed by the server");
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		on_connection_lost(v, errno == ECONNRESET ? "connection reset by the server" : strerror(errno));
		return;
	}
	consume_input(v, buf, have + (size_t)n);
}

/* The connection (and its TLS) is up: RTSP starts. */
static void begin_rtsp(struct viewer *v)
{
	v->state = V_OPTIONS;
	v->reading = true;
	update_interest(v);
	v->pending_cseq = send_request(v, "OPTIONS", opt.url, "%s", "");
	v->deadline = now_us + IO_TIMEOUT_US;
}

static void tls_handshake(struct viewer *v)
{
	errno = 0;
	int r = SSL_do_handshake(v->ssl);
	if (r == 1) {
		v->tls_done_time = now_us;
		begin_rtsp(v);
		return;
	}
	int saved = errno;
	int err = SSL_get_error(v->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		v->tls_handshake_wants_write = err == SSL_ERROR_WANT_WRITE;
		update_interest(v);
		return;
	}
	char why[160];
	v->tls_broken = true;
	fail_viewer(v, "TLS handshake: %s", tls_error_text(err, saved, why, sizeof why));
}

static void on_connected(struct viewer *v)
{
	int err = 0;
	socklen_t el = sizeof err;
	getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		fail_viewer(v, "connect: %s", strerror(err));
		return;
	}
	v->tcp_connected = true;
	if (!opt.tls) {
		begin_rtsp(v);
		return;
	}
	v->ssl = SSL_new(ssl_ctx);
	if (v->ssl == NULL || SSL_set_fd(v->ssl, v->fd) != 1
	    || (tls_sni[0] && SSL_set_tlsext_host_name(v->ssl, tls_sni) != 1)) {
		char why[160];
		v->tls_broken = true;
		fail_viewer(v, "TLS set-up: %s", tls_error_text(SSL_ERROR_SSL, 0, why, sizeof why));
		return;
	}
	SSL_set_connect_state(v->ssl);
	v->state = V_HANDSHAKE;
	v->deadline = now_us + IO_TIMEOUT_US;
	tls_handshake(v);
}

static void on_tcp_event(struct viewer *v, uint32_t events)
{
	if (v->state == V_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(v);
		return;
	}
	if (v->ssl) {
		/* Each direction may be waiting for the other one. */
		if (v->state == V_HANDSHAKE) {
			tls_handshake(v);
			return;
		}
		bool in = events & (EPOLLIN | EPOLLERR | EPOLLHUP), out = events & EPOLLOUT;
		if (v->out_len > v->out_off && (v->tls_write_wants_read ? in : out))
			flush_out(v);
		if (v->state != V_DONE && v->reading && (in || (out && v->tls_read_wants_write)))
			read_tcp(v);
		return;
	}
	if ((events & EPOLLOUT) && v->out_len > v->out_off)
		flush_out(v);
	if (v->state != V_DONE && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && v->reading)
		read_tcp(v);
}

/* ---------------------------------------------------------------- UDP input */

/* The segment size of a datagram the kernel coalesced (UDP_GRO), or 0. */
static size_t gro_segment(const struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm))
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int seg;
			memcpy(&seg, CMSG_DATA(cm), sizeof seg);
			return seg > 0 ? (size_t)seg : 0;
		}
	return 0;
}

static void read_udp(struct viewer *v, int track, bool rtcp, int fd)
{
	int n = recvmmsg(fd, udp_msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		struct msghdr *mh = &udp_msgs[i].msg_hdr;
		const uint8_t *p = udp_iov[i].iov_base;
		size_t len = udp_msgs[i].msg_len;
		if (mh->msg_flags & MSG_TRUNC)
			v->tracks[track].truncated++;
		size_t seg = opt.gro ? gro_segment(mh) : 0;
		mh->msg_flags = 0;
		mh->msg_controllen = opt.gro ? sizeof udp_ctl[i].buf : 0;
		if (seg == 0 || seg >= len)
			seg = len;
		/* A coalesced datagram is the sender's run of packets, each seg
		 * bytes but the last. */
		for (size_t off = 0; off < len; off += seg) {
			size_t l = len - off < seg ? len - off : seg;
			if (rtcp)
				on_rtcp(v, track, p + off, l);
			else
				on_rtp(v, track, p + off, l);
		}
	}
}

/* ---------------------------------------------------------------- starting viewers */

static void start_viewer(struct viewer *v)
{
	v->connect_time = now_us;
	v->pending_cseq = v->keepalive_cseq = -1;
	v->carry = malloc(CARRY_CAP);
	if (v->carry == NULL) {
		fail_viewer(v, "out of memory");
		return;
	}
	int fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail_viewer(v, "socket: %s", strerror(errno));
		return;
	}
	v->fd = fd;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (is_stall_viewer(v)) {
		/* A slow viewer on a real network has a small window; without a
		 * fixed buffer, loopback autotuning lets the kernel park seconds
		 * of media in our socket and the server never sees the stall. */
		int rcvbuf = STALL_RCVBUF;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	}
	v->state = V_CONNECTING;
	v->deadline = now_us + IO_TIMEOUT_US;
	epoll_set(fd, ev_key(v->index, 0), EPOLLOUT, EPOLL_CTL_ADD);
	v->want_out = true;
	if (connect(fd, (struct sockaddr *)&server_addr, server_addrlen) < 0 && errno != EINPROGRESS)
		fail_viewer(v, "connect: %s", strerror(errno));
}

/* ---------------------------------------------------------------- the stall */

static void set_stalled(struct viewer *v, bool stalled)
{
	if (opt.transport == TRANSPORT_TCP) {
		/* Out of the epoll set altogether: with level triggering, a
		 * registered socket that is not read would wake us for ever. */
		v->reading = !stalled;
		if (stalled) {
			epoll_set(v->fd, 0, 0, EPOLL_CTL_DEL);
		} else {
			uint32_t events = EPOLLIN | (v->out_len > v->out_off ? EPOLLOUT : 0);
			epoll_set(v->fd, ev_key(v->index, 0), events, EPOLL_CTL_ADD);
			v->want_out = events & EPOLLOUT;
			if (v->ssl) {
				update_interest(v);
				if (SSL_has_pending(v->ssl))
					tls_queue(v);
			}
		}
		return;
	}
	for (int i = 0; i < v->ntracks; i++) {
		struct track *t = &v->tracks[i];
		if (stalled) {
			epoll_set(t->rtp_fd, 0, 0, EPOLL_CTL_DEL);
			epoll_set(t->rtcp_fd, 0, 0, EPOLL_CTL_DEL);
		} else {
			epoll_set(t->rtp_fd, ev_key(v->index, 1 + 2 * i), EPOLLIN, EPOLL_CTL_ADD);
			epoll_set(t->rtcp_fd, ev_key(v->index, 2 + 2 * i), EPOLLIN, EPOLL_CTL_ADD);
		}
	}
}

/* While stalled over TCP the connection is not watched, so requests that
 * would need an answer are not sent (the server sees a viewer that simply
 * stopped reading, which is the point). */
static void handle_stall(struct viewer *v)
{
	if (v->state != V_PLAYING)
		return;
	int64_t begin = v->play_time + seconds_to_us(opt.stall_after);
	int64_t end = begin + seconds_to_us(opt.stall_for);
	if (v->stall == STALL_NONE && now_us >= begin) {
		v->stall = STALL_ACTIVE;
		set_stalled(v, true);
	}
	if (v->stall == STALL_ACTIVE && now_us >= end) {
		v->stall = STALL_RESUMED;
		set_stalled(v, false);
	}
}

/* ---------------------------------------------------------------- timers */

static void tick(void)
{
	for (int i = 0; i < opt.viewers; i++) {
		struct viewer *v = &viewers[i];
		switch (v->state) {
		case V_IDLE:
		case V_DONE:
			continue;
		case V_PLAYING:
			if (is_stall_viewer(v))
				handle_stall(v);
			if (now_us >= v->play_time + seconds_to_us(opt.seconds)) {
				v->run_completed = true;
				if (v->stall == STALL_ACTIVE)
					set_stalled(v, false);
				begin_teardown(v);
				continue;
			}
			if (now_us >= v->next_keepalive && v->reading)
				send_keepalive(v);
			continue;
		case V_TEARDOWN:
			if (v->deadline && now_us >= v->deadline) {
				v->teardown_failed = !v->teardown_answered;
				close_viewer(v);
			}
			continue;
		default:
			if (v->deadline && now_us >= v->deadline)
				fail_viewer(v, "%s: no %s within %lld s", state_names[v->state],
					    v->state == V_CONNECTING ? "connection" :
					    v->state == V_HANDSHAKE ? "end of the handshake" : "response",
					    (long long)(IO_TIMEOUT_US / 1000000));
			continue;
		}
	}
}

/* ---------------------------------------------------------------- results */

struct percentiles {
	int count;
	double median, p90, p99, max;
};

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of values[0..n) (sorted in place). */
static struct percentiles percentiles_of(double *values, int n)
{
	struct percentiles pc = { .count = n };
	if (n == 0)
		return pc;
	qsort(values, (size_t)n, sizeof *values, compare_double);
	int i50 = (int)ceil(0.50 * n) - 1, i90 = (int)ceil(0.90 * n) - 1, i99 = (int)ceil(0.99 * n) - 1;
	pc.median = values[i50 < 0 ? 0 : i50];
	pc.p90 = values[i90 < 0 ? 0 : i90];
	pc.p99 = values[i99 < 0 ? 0 : i99];
	pc.max = values[n - 1];
	return pc;
}

/* A viewer "streams" when it played its whole run, got packets on every
 * track, and no track paused longer than SILENCE_LIMIT_US from the
 * viewer's first packet to the end of its run. */
static bool viewer_streamed(const struct viewer *v)
{
	if (!v->run_completed || v->failed || v->ntracks == 0 || v->first_packet_time == 0)
		return false;
	for (int i = 0; i < v->ntracks; i++) {
		const struct track *t = &v->tracks[i];
		if (t->packets == 0 || t->max_silence > SILENCE_LIMIT_US
		    || v->run_end_time - t->last_time > SILENCE_LIMIT_US)
			return false;
	}
	return true;
}

static int64_t viewer_lost(const struct viewer *v)
{
	int64_t lost = 0;
	for (int i = 0; i < v->ntracks; i++)
		lost += v->tracks[i].missing;
	return lost;
}

struct error_kind {
	char text[160];
	int count, first_viewer;
};

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_percentiles(FILE *f, const char *name, const struct percentiles *pc)
{
	if (pc->count == 0) {
		fprintf(f, "\"%s\":{\"median\":null,\"p90\":null,\"p99\":null,\"max\":null}", name);
		return;
	}
	fprintf(f, "\"%s\":{\"median\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
		name, pc->median, pc->p90, pc->p99, pc->max);
}

static const char *tri(int value)
{
	return value < 0 ? "null" : value ? "true" : "false";
}

static int report(int64_t start_time, int64_t end_time)
{
	int started = 0, tcp_connected = 0, connected = 0, streaming = 0, failed = 0, with_loss = 0;
	int key_ok = 0, teardown_failed = 0, judged = 0;
	uint64_t packets = 0, bytes = 0, reordered = 0, duplicates = 0, srs = 0, byes = 0;
	uint64_t ssrc_changes = 0, rtpinfo_mismatch = 0, truncated = 0;
	int64_t lost = 0, max_silence = 0;
	int64_t first_play = 0, last_end = 0;
	double *ttfp = xcalloc((size_t)opt.viewers, sizeof *ttfp);
	double *ttfk = xcalloc((size_t)opt.viewers, sizeof *ttfk);
	double *tths = xcalloc((size_t)opt.viewers, sizeof *tths);
	int nttfp = 0, nttfk = 0, ntths = 0;
	struct error_kind kinds[MAX_ERROR_KINDS];
	int nkinds = 0, lossy_listed = 0;
	int lossy[16];

	for (int i = 0; i < opt.viewers; i++) {
		struct viewer *v = &viewers[i];
		bool stalled = is_stall_viewer(v);
		if (v->connect_time)
			started++;
		tcp_connected += v->tcp_connected;
		connected += v->play_ok;
		if (v->play_ok) {
			if (!first_play || v->play_time < first_play)
				first_play = v->play_time;
			int64_t e = v->run_end_time ? v->run_end_time : end_time;
			if (e > last_end)
				last_end = e;
		}
		teardown_failed += v->teardown_failed;
		for (int k = 0; k < v->ntracks; k++) {
			const struct track *t = &v->tracks[k];
			packets += t->packets;
			bytes += t->bytes;
			srs += t->sender_reports;
			byes += t->byes;
			ssrc_changes += t->ssrc_changes;
			truncated += t->truncated;
			if (t->packets && t->rtpinfo_seq >= 0 && t->first_seq != t->rtpinfo_seq)
				rtpinfo_mismatch++;
			if (t->has_setup_ssrc && t->packets && t->ssrc != t->setup_ssrc)
				ssrc_changes++;
		}
		if (v->first_packet_time)
			ttfp[nttfp++] = (double)(v->first_packet_time - v->connect_time) / 1000.0;
		if (v->first_key_time)
			ttfk[nttfk++] = (double)(v->first_key_time - v->connect_time) / 1000.0;
		if (v->tls_done_time)
			tths[ntths++] = (double)(v->tls_done_time - v->connect_time) / 1000.0;
		key_ok += v->first_video.decided && v->first_video.key;
		if (stalled)
			continue;   /* reported on its own below */

		judged++;
		bool ok = viewer_streamed(v);
		streaming += ok;
		if (!ok && debug_gaps && v->play_ok) {
			for (int k = 0; k < v->ntracks; k++) {
				const struct track *t = &v->tracks[k];
				fprintf(stderr, "rtspbench: viewer %d track %d: %llu packets, first %.3f s after "
					   "PLAY, last %.3f s before the run's end, longest pause %.3f s\n",
					i, k, (unsigned long long)t->packets,
					t->packets ? (double)(t->first_time - v->play_time) / 1e6 : -1.0,
					t->packets ? (double)(v->run_end_time - t->last_time) / 1e6 : -1.0,
					(double)t->max_silence / 1e6);
			}
		}
		if (!ok && !v->failed && v->state != V_IDLE && v->error[0] == '\0') {
			if (!v->run_completed)
				snprintf(v->error, sizeof v->error, "run cut short while %s", state_names[v->state]);
			else if (v->first_packet_time == 0)
				snprintf(v->error, sizeof v->error, "no RTP packet received");
			else {
				int empty = -1;
				for (int k = 0; k < v->ntracks && empty < 0; k++)
					if (v->tracks[k].packets == 0)
						empty = k;
				if (empty >= 0)
					snprintf(v->error, sizeof v->error, "no RTP packet on track %d", empty);
				else
					snprintf(v->error, sizeof v->error, "a track was silent for more than %lld s",
						 (long long)(SILENCE_LIMIT_US / 1000000));
			}
		}
		if (v->state == V_IDLE && !v->error[0])
			snprintf(v->error, sizeof v->error, "never started (run interrupted)");
		if (v->failed || !v->run_completed)
			failed++;
		int64_t vl = viewer_lost(v);
		lost += vl;
		if (vl > 0) {
			with_loss++;
			if (lossy_listed < (int)(sizeof lossy / sizeof lossy[0]))
				lossy[lossy_listed++] = i;
		}
		for (int k = 0; k < v->ntracks; k++) {
			const struct track *t = &v->tracks[k];
			reordered += t->late;
			duplicates += t->duplicates;
			if (t->packets == 0)
				continue;
			int64_t silence = t->max_silence;
			if (v->run_end_time && v->run_end_time - t->last_time > silence)
				silence = v->run_end_time - t->last_time;
			if (silence > max_silence)
				max_silence = silence;
		}
		if (v->error[0]) {
			int k;
			for (k = 0; k < nkinds; k++)
				if (!strcmp(kinds[k].text, v->error))
					break;
			if (k < nkinds) {
				kinds[k].count++;
			} else if (nkinds < MAX_ERROR_KINDS) {
				snprintf(kinds[nkinds].text, sizeof kinds[nkinds].text, "%s", v->error);
				kinds[nkinds].count = 1;
				kinds[nkinds].first_viewer = i;
				nkinds++;
			}
		}
	}

	struct percentiles pfp = percentiles_of(ttfp, nttfp), pfk = percentiles_of(ttfk, nttfk);
	struct percentiles phs = percentiles_of(tths, ntths);
	double play_span = first_play && last_end > first_play ? (double)(last_end - first_play) / 1e6 : 0;
	double mbps = play_span > 0 ? (double)bytes * 8 / play_span / 1e6 : 0;
	double elapsed = (double)(end_time - start_time) / 1e6;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
		+ (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

	/* The stalled viewer, on its own. */
	const struct viewer *sv = opt.stall_enabled ? &viewers[opt.stall_viewer] : NULL;
	uint64_t stall_packets = 0, stall_gaps = 0;
	int64_t stall_lost = 0;
	int resumed_key = -1;
	bool stall_disconnected = false;
	if (sv) {
		for (int k = 0; k < sv->ntracks; k++) {
			stall_packets += sv->tracks[k].packets;
			stall_gaps += sv->tracks[k].gap_events;
			stall_lost += sv->tracks[k].missing;
		}
		stall_disconnected = sv->disconnected || sv->bye_while_playing || (sv->failed && sv->play_ok);
		if (sv->stall_after_gap.decided)
			resumed_key = sv->stall_after_gap.key;
		else if (sv->stall_after_resume.decided && !sv->stall_after_gap.started)
			resumed_key = sv->stall_after_resume.key;
	}

	if (!opt.quiet) {
		FILE *e = stderr;
		fprintf(e, "rtspbench: %s over %s%s, %d viewers, %.0f s each", opt.url,
			opt.transport == TRANSPORT_TCP ? "TCP" : "UDP",
			!opt.tls ? "" : opt.transport == TRANSPORT_TCP ? " in TLS" : " (RTSP in TLS)",
			opt.viewers, opt.seconds);
		if (opt.ramp_rate > 0)
			fprintf(e, ", %.1f joins/s", opt.ramp_rate);
		fprintf(e, " (run took %.1f s)\n", elapsed);
		fprintf(e, "  viewers:   %d started, %d TCP-connected, %d playing (PLAY answered), "
			   "%d streaming, %d failed\n",
			started, tcp_connected, connected, streaming, failed);
		for (int k = 0; k < nkinds; k++)
			fprintf(e, "  error:     %s (%d viewer%s, first: viewer %d)\n", kinds[k].text,
				kinds[k].count, kinds[k].count == 1 ? "" : "s", kinds[k].first_viewer);
		fprintf(e, "  received:  %llu packets, %llu bytes, %.2f Mbit/s\n",
			(unsigned long long)packets, (unsigned long long)bytes, mbps);
		fprintf(e, "  loss:      %lld lost packets, %d viewer%s with loss, %llu reordered, %llu duplicates; "
			   "longest pause on a track %.0f ms\n",
			(long long)lost, with_loss, with_loss == 1 ? "" : "s",
			(unsigned long long)reordered, (unsigned long long)duplicates, (double)max_silence / 1000.0);
		if (ntths)
			fprintf(e, "  TLS:       handshake done median %.0f ms after connect(), p90 %.0f, "
				   "p99 %.0f, max %.0f\n", phs.median, phs.p90, phs.p99, phs.max);
		if (nttfp)
			fprintf(e, "  1st packet: median %.0f ms, p90 %.0f, p99 %.0f, max %.0f\n",
				pfp.median, pfp.p90, pfp.p99, pfp.max);
		if (nttfk)
			fprintf(e, "  1st key:   median %.0f ms, p90 %.0f, p99 %.0f, max %.0f; "
				   "%d viewer%s started at a key frame\n",
				pfk.median, pfk.p90, pfk.p99, pfk.max, key_ok, key_ok == 1 ? "" : "s");
		fprintf(e, "  RTCP:      %llu sender reports, %llu BYEs; RTP-Info seq mismatches: %llu; "
			   "SSRC changes: %llu\n", (unsigned long long)srs, (unsigned long long)byes,
			(unsigned long long)rtpinfo_mismatch, (unsigned long long)ssrc_changes);
		if (teardown_failed)
			fprintf(e, "  TEARDOWN:  %d unanswered or refused\n", teardown_failed);
		if (sv)
			fprintf(e, "  stall:     viewer %d (%.1f s after PLAY, for %.1f s): %llu packets, "
				   "%llu gaps (%lld lost), %s, resumed %s, %s%s%s\n",
				opt.stall_viewer, opt.stall_after, opt.stall_for,
				(unsigned long long)stall_packets, (unsigned long long)stall_gaps,
				(long long)stall_lost,
				sv->stall == STALL_NONE ? "never stalled" :
				sv->stall_after_gap.started ? "gap after the stall" : "no gap after the stall",
				resumed_key < 0 ? "(no video after the stall)" :
				resumed_key ? "at a key frame" : "NOT at a key frame",
				stall_disconnected ? "disconnected" : "not disconnected",
				sv->error[0] ? ": " : "", sv->error);
		fprintf(e, "  CPU:       %.2f s", cpu);
		if (elapsed >= 1)
			fprintf(e, " (%.0f%% of one core)", 100 * cpu / elapsed);
		fputc('\n', e);
	}

	FILE *o = stdout;
	fprintf(o, "{\"url\":");
	json_string(o, opt.url);
	fprintf(o, ",\"transport\":\"%s\",\"tls\":%s,\"viewers\":%d,\"started\":%d,\"tcp_connected\":%d,"
		   "\"connected\":%d,\"streaming\":%d,\"failed\":%d,\"seconds\":%g,\"ramp\":%g,"
		   "\"elapsed\":%.3f,\"packets\":%llu,\"bytes\":%llu,\"mbps\":%.3f,\"lost\":%lld,"
		   "\"viewers_with_loss\":%d,\"lossy_viewers\":[",
		opt.transport == TRANSPORT_TCP ? "tcp" : "udp", opt.tls ? "true" : "false", opt.viewers,
		started, tcp_connected,
		connected, streaming, failed, opt.seconds, opt.ramp_rate, elapsed,
		(unsigned long long)packets, (unsigned long long)bytes, mbps, (long long)lost, with_loss);
	for (int k = 0; k < lossy_listed; k++)
		fprintf(o, "%s%d", k ? "," : "", lossy[k]);
	fprintf(o, "],\"reordered\":%llu,\"duplicates\":%llu,\"max_silence_ms\":%.1f,",
		(unsigned long long)reordered, (unsigned long long)duplicates, (double)max_silence / 1000.0);
	json_percentiles(o, "ttfp_ms", &pfp);
	fputc(',', o);
	json_percentiles(o, "ttfk_ms", &pfk);
	fputc(',', o);
	json_percentiles(o, "tls_handshake_ms", &phs);
	fprintf(o, ",\"keyframe_start_ok\":%d,\"rtcp_sr\":%llu,\"rtcp_bye\":%llu,"
		   "\"rtpinfo_seq_mismatch\":%llu,\"ssrc_changes\":%llu,\"truncated\":%llu,"
		   "\"teardown_failed\":%d,\"cpu_seconds\":%.3f,\"errors\":[",
		key_ok, (unsigned long long)srs, (unsigned long long)byes,
		(unsigned long long)rtpinfo_mismatch, (unsigned long long)ssrc_changes,
		(unsigned long long)truncated, teardown_failed, cpu);
	for (int k = 0; k < nkinds; k++) {
		char line[320];
		snprintf(line, sizeof line, "%.160s (%d viewer%s, first: viewer %d)", kinds[k].text,
			 kinds[k].count, kinds[k].count == 1 ? "" : "s", kinds[k].first_viewer);
		if (k)
			fputc(',', o);
		json_string(o, line);
	}
	fprintf(o, "],\"stall\":");
	if (!sv) {
		fprintf(o, "null");
	} else {
		fprintf(o, "{\"viewer\":%d,\"after\":%g,\"for\":%g,\"stalled\":%s,\"packets\":%llu,"
			   "\"gaps\":%llu,\"lost\":%lld,\"gap_after_stall\":%s,\"resumed_at_keyframe\":%s,"
			   "\"disconnected\":%s,\"error\":",
			opt.stall_viewer, opt.stall_after, opt.stall_for,
			sv->stall != STALL_NONE ? "true" : "false", (unsigned long long)stall_packets,
			(unsigned long long)stall_gaps, (long long)stall_lost,
			sv->stall_after_gap.started ? "true" : "false", tri(resumed_key),
			stall_disconnected ? "true" : "false");
		if (sv->error[0])
			json_string(o, sv->error);
		else
			fprintf(o, "null");
		fputc('}', o);
	}
	fprintf(o, "}\n");
	fflush(o);
	free(ttfp);
	free(ttfk);
	free(tths);
	return started > 0 && streaming == judged && lost == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- set-up */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtspbench [-n VIEWERS] [-t SECONDS] [-r JOINS_PER_SECOND] [-T tcp|udp] [-j]\n"
		"                 [--stall K:AFTER:FOR] [-q] URL\n"
		"  URL               rtsp://HOST[:PORT]/PATH (port 554) or rtsps://HOST[:PORT]/PATH\n"
		"                    (RTSP over TLS 1.2+, port 322; the server's certificate is NOT\n"
		"                    verified: a load tool, not a client to trust; -T udp sends only\n"
		"                    the RTSP connection through TLS)\n"
		"  -n VIEWERS        concurrent viewers (default 10)\n"
		"  -t SECONDS        how long each viewer plays after its PLAY (default 10)\n"
		"  -r RATE           viewers started per second (default 0: all at once)\n"
		"  -T tcp|udp        RTP over the RTSP connection (default) or UDP unicast\n"
		"  -j                print the JSON result line (always printed, last line of stdout)\n"
		"  -q                no human summary on stderr\n"
		"  --stall K:A:F     viewer K (from 0) stops reading A s into its play, for F s;\n"
		"                    it is reported apart and left out of the other totals; over TCP\n"
		"                    it reads with a fixed 64 KiB socket buffer, like a slow network\n"
		"  --gro             UDP: receive like a host whose NIC coalesces datagrams (UDP_GRO):\n"
		"                    a burst the server sent segmented (UDP_SEGMENT) is handed over\n"
		"                    whole, not cut up on the sender's CPU as loopback otherwise does\n"
		"exit status: 0 every (other) viewer streamed with no loss, 1 otherwise, 2 usage\n"
		"environment: RTSPBENCH_DEBUG=1 logs every sequence gap, and why a viewer did not stream\n");
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(d))
		return false;
	*out = d;
	return true;
}

static bool parse_stall(const char *s)
{
	char *end;
	errno = 0;
	long k = strtol(s, &end, 10);
	if (errno || end == s || *end != ':' || k < 0 || k > INT_MAX)
		return false;
	const char *a = end + 1;
	const char *colon = strchr(a, ':');
	if (!colon)
		return false;
	char after[64];
	size_t al = (size_t)(colon - a);
	if (al == 0 || al >= sizeof after)
		return false;
	memcpy(after, a, al);
	after[al] = '\0';
	if (!parse_double(after, &opt.stall_after) || !parse_double(colon + 1, &opt.stall_for))
		return false;
	if (opt.stall_after < 0 || opt.stall_for <= 0)
		return false;
	opt.stall_viewer = (int)k;
	opt.stall_enabled = true;
	return true;
}

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "stall", required_argument, NULL, 'S' },
		{ "gro", no_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	double d;
	while ((c = getopt_long(argc, argv, "n:t:r:T:jqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_double(optarg, &d) || d < 1 || d > 100000 || d != floor(d)) {
				fprintf(stderr, "rtspbench: -n wants a number of viewers from 1 to 100000\n");
				return -1;
			}
			opt.viewers = (int)d;
			break;
		case 't':
			if (!parse_double(optarg, &opt.seconds) || opt.seconds <= 0 || opt.seconds > 86400) {
				fprintf(stderr, "rtspbench: -t wants seconds > 0\n");
				return -1;
			}
			break;
		case 'r':
			if (!parse_double(optarg, &opt.ramp_rate) || opt.ramp_rate < 0) {
				fprintf(stderr, "rtspbench: -r wants joins per second >= 0\n");
				return -1;
			}
			break;
		case 'T':
			if (!strcasecmp(optarg, "tcp"))
				opt.transport = TRANSPORT_TCP;
			else if (!strcasecmp(optarg, "udp"))
				opt.transport = TRANSPORT_UDP;
			else {
				fprintf(stderr, "rtspbench: -T wants tcp or udp\n");
				return -1;
			}
			break;
		case 'j':
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'G':
			opt.gro = true;
			break;
		case 'S':
			if (!parse_stall(optarg)) {
				fprintf(stderr, "rtspbench: --stall wants K:AFTER:FOR (viewer, seconds, seconds)\n");
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "rtspbench: exactly one URL is needed\n");
		return -1;
	}
	opt.url = argv[optind];
	if (opt.stall_enabled && opt.stall_viewer >= opt.viewers) {
		fprintf(stderr, "rtspbench: --stall: viewer %d does not exist (-n %d)\n",
			opt.stall_viewer, opt.viewers);
		return -1;
	}
	return 0;
}

/* Returns 0, -2 for a URL that is not usable at all (a usage error), or
 * -1 when the host does not resolve (every viewer fails; error[] says why). */
static int resolve_server(char *error, size_t error_len)
{
	if (strlen(opt.url) > MAX_URL) {
		fprintf(stderr, "rtspbench: URL longer than %d bytes\n", MAX_URL);
		return -2;
	}
	static struct rtsp_url u;
	if (rtsp_url_parse(opt.url, &u) < 0 || (strcmp(u.scheme, "rtsp") != 0 && strcmp(u.scheme, "rtsps") != 0)
	    || !u.host[0]) {
		fprintf(stderr, "rtspbench: not an rtsp:// or rtsps:// URL: %s\n", opt.url);
		return -2;
	}
	opt.tls = strcmp(u.scheme, "rtsps") == 0;
	if (opt.tls) {
		/* SNI for a name, as clients send it; never for an address (RFC 6066 §3). */
		struct in6_addr a6;
		struct in_addr a4;
		if (inet_pton(AF_INET, u.host, &a4) != 1 && inet_pton(AF_INET6, u.host, &a6) != 1)
			snprintf(tls_sni, sizeof tls_sni, "%s", u.host);
	}
	char port[16];
	snprintf(port, sizeof port, "%d", u.port >= 0 ? u.port : opt.tls ? 322 : 554);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int r = getaddrinfo(u.host, port, &hints, &res);
	if (r != 0) {
		snprintf(error, error_len, "resolving %.64s: %s", u.host, gai_strerror(r));
		return -1;
	}
	memcpy(&server_addr, res->ai_addr, res->ai_addrlen);
	server_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* One client context for every viewer: TLS 1.2 or later, no certificate
 * verification (a load tool; the server under test is usually
 * self-signed), a server that closes without close_notify taken as a close,
 * writes that may be partial and retried from a buffer that has grown, and
 * reads ahead of the record being read into a larger buffer (fewer
 * recv() calls: a record header and its body in one). */
static int setup_tls(void)
{
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (ssl_ctx == NULL || SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1) {
		char why[160];
		fprintf(stderr, "rtspbench: TLS context: %s\n", tls_error_text(SSL_ERROR_SSL, 0, why, sizeof why));
		return -1;
	}
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ssl_ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ssl_ctx, TLS_READ_AHEAD);
	tls_ready = xcalloc((size_t)opt.viewers, sizeof *tls_ready);
	tls_ready_work = xcalloc((size_t)opt.viewers, sizeof *tls_ready_work);
	return 0;
}

/* Thousands of sessions need thousands of descriptors (five per UDP viewer
 * with two tracks). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void on_signal(int sig)
{
	interrupted = 1;
}

int main(int argc, char **argv)
{
	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	char resolve_error[128] = "";
	int resolved = resolve_server(resolve_error, sizeof resolve_error);
	if (resolved == -2)
		return 2;
	if (opt.tls && setup_tls() < 0)
		return 1;
	raise_fd_limit();
	const char *debug = getenv("RTSPBENCH_DEBUG");
	debug_gaps = debug && *debug && strcmp(debug, "0") != 0;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sched_param batch = { 0 };
	if (sched_setscheduler(0, SCHED_BATCH, &batch) < 0)
		fprintf(stderr, "rtspbench: SCHED_BATCH: %s (measuring anyway)\n", strerror(errno));

	epfd = epoll_create1(EPOLL_CLOEXEC);
	rx_buf = malloc(RX_CAP);
	if (opt.gro)
		udp_slot = UDP_GRO_SLOT;
	udp_buf = malloc((size_t)UDP_BATCH * udp_slot);
	viewers = xcalloc((size_t)opt.viewers, sizeof *viewers);
	if (epfd < 0 || !rx_buf || !udp_buf) {
		fprintf(stderr, "rtspbench: set-up failed: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < UDP_BATCH; i++) {
		udp_iov[i].iov_base = udp_buf + i * udp_slot;
		udp_iov[i].iov_len = udp_slot;
		udp_msgs[i].msg_hdr.msg_iov = &udp_iov[i];
		udp_msgs[i].msg_hdr.msg_iovlen = 1;
		if (opt.gro) {
			udp_msgs[i].msg_hdr.msg_control = udp_ctl[i].buf;
			udp_msgs[i].msg_hdr.msg_controllen = sizeof udp_ctl[i].buf;
		}
	}
	for (int i = 0; i < opt.viewers; i++) {
		viewers[i].index = i;
		viewers[i].fd = -1;
		viewers[i].session_timeout = DEFAULT_SESSION_TIMEOUT;
	}

	now_us = monotonic_us();
	const int64_t start = now_us;
	const int64_t ramp_us = opt.ramp_rate > 0 ? seconds_to_us((opt.viewers - 1) / opt.ramp_rate) : 0;
	const int64_t hard_end = start + ramp_us + seconds_to_us(opt.seconds) + GRACE_US;
	int next_join = 0;
	if (resolved < 0) {
		for (int i = 0; i < opt.viewers; i++) {
			viewers[i].connect_time = now_us;
			fail_viewer(&viewers[i], "%s", resolve_error);
		}
		next_join = opt.viewers;
	}
	int64_t next_tick = start;
	struct epoll_event events[EPOLL_BATCH];

	while (!interrupted) {
		if (now_us >= next_tick) {
			/* Joins: viewer i is due at start + i / rate. */
			while (next_join < opt.viewers
			       && (opt.ramp_rate <= 0
				   || now_us >= start + seconds_to_us(next_join / opt.ramp_rate))) {
				start_viewer(&viewers[next_join++]);
			}
			tick();
			next_tick = now_us + TICK_US;
			bool all_done = next_join == opt.viewers;
			for (int i = 0; all_done && i < opt.viewers; i++)
				all_done = viewers[i].state == V_DONE;
			if (all_done || now_us >= hard_end)
				break;
		}
		int timeout_ms = (int)((next_tick - now_us + 999) / 1000);
		if (timeout_ms < 0 || tls_nready > 0)
			timeout_ms = 0;
		int n = epoll_wait(epfd, events, EPOLL_BATCH, timeout_ms);
		now_us = monotonic_us();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "rtspbench: epoll_wait: %s\n", strerror(errno));
			break;
		}
		for (int k = 0; k < n; k++) {
			struct viewer *v = &viewers[events[k].data.u64 >> 8];
			int role = (int)(events[k].data.u64 & 0xff);
			if (v->state == V_DONE)
				continue;
			if (role == 0) {
				on_tcp_event(v, events[k].events);
			} else {
				int track = (role - 1) / 2;
				bool rtcp = (role - 1) % 2;
				if (track < v->ntracks) {
					struct track *t = &v->tracks[track];
					int fd = rtcp ? t->rtcp_fd : t->rtp_fd;
					if (fd >= 0)
						read_udp(v, track, rtcp, fd);
				}
			}
		}
		/* TLS input OpenSSL holds with no epoll event to come; a read may
		 * queue its viewer again (for the next round). */
		if (tls_nready > 0) {
			int nready = tls_nready;
			memcpy(tls_ready_work, tls_ready, (size_t)nready * sizeof *tls_ready);
			tls_nready = 0;
			for (int k = 0; k < nready; k++) {
				struct viewer *v = &viewers[tls_ready_work[k]];
				v->tls_queued = false;
				if (v->state != V_DONE && v->ssl && v->reading
				    && !(v->stall == STALL_ACTIVE && opt.transport == TRANSPORT_TCP))
					read_tcp(v);
			}
		}
	}

	/* Whoever is still going now was cut short (or interrupted). */
	now_us = monotonic_us();
	for (int i = 0; i < opt.viewers; i++) {
		struct viewer *v = &viewers[i];
		if (v->state == V_DONE || v->state == V_IDLE)
			continue;
		if (v->state == V_TEARDOWN) {
			v->teardown_failed = !v->teardown_answered;
			close_viewer(v);
		} else {
			if (v->state == V_PLAYING && interrupted)
				v->run_completed = false;
			fail_viewer(v, "%s still in progress at the end of the run%s", state_names[v->state],
				    interrupted ? " (interrupted)" : "");
		}
	}
	int status = report(start, now_us);
	return status;
}
