/* worker.c — the worker process: receives its stream's configuration and
 * client connections from the master over the IPC socket, runs the media
 * and the sessions, reports status, and stops when told (or when the
 * master goes away). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/log.h"
#include "worker/fflog.h"
#include "worker/worker.h"

#define HOUSEKEEPING_MS 250

static void worker_reap(struct worker *w)
{
	w->reap_pending = false;
	for (struct session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		if (s->dead)
			session_free(s);
	}
	for (struct client *c = w->clients, *next; c; c = next) {
		next = c->next;
		if (c->dead)
			client_free(c);
	}
	if (w->draining && !w->nclients && !w->nsessions)
		ev_stop(w->loop);
}

static int64_t worker_reap_timer(struct ev_loop *loop, long long id, void *arg)
{
	worker_reap(arg);
	return -1;
}

void worker_schedule_reap(struct worker *w)
{
	if (w->reap_pending)
		return;
	w->reap_pending = true;
	ev_timer_add(w->loop, 0, worker_reap_timer, w);
}

static void worker_send_status(struct worker *w)
{
	struct ipc_worker_status st = { 0 };
	for (struct session *s = w->sessions; s; s = s->next) {
		if (s->dead)
			continue;
		st.sessions++;
		if (s->state == SESSION_PLAYING)
			st.playing++;
	}
	st.bytes_out = w->bytes_out;
	st.packets_out = w->packets_out;
	st.bytes_in = w->bytes_in_closed + media_bytes_in(w->live);
	for (struct session *s = w->sessions; s; s = s->next)
		if (s->own_media)
			st.bytes_in += media_bytes_in(s->media);
	if (w->mcast && w->mcast->own_media)
		st.bytes_in += media_bytes_in(w->mcast->media);
	ipc_send(w->ipc_fd, IPC_STATUS, 0, &st, sizeof st, -1);
}

/* IPC_SESSIONS_QUERY: every live session, in as many messages as needed. */
static void worker_send_sessions(struct worker *w, uint32_t query)
{
	static uint8_t msg[IPC_MAX_PAYLOAD];
	struct ipc_sessions *hdr = (struct ipc_sessions *)msg;
	struct ipc_session_info *info = (struct ipc_session_info *)(msg + sizeof *hdr);
	int64_t now = ev_now_us();
	struct session *s = w->sessions;
	do {
		uint32_t n = 0;
		for (; s && n < IPC_SESSIONS_PER_MSG; s = s->next) {
			if (s->dead)
				continue;
			struct ipc_session_info *i = &info[n++];
			memset(i, 0, sizeof *i);
			snprintf(i->id, sizeof i->id, "%s", s->id);
			snprintf(i->client, sizeof i->client, "%s", s->peer);
			bool tcp = false;
			for (int t = 0; t < SOURCE_MAX_TRACKS; t++)
				tcp |= s->tracks[t].setup && s->tracks[t].tcp;
			snprintf(i->transport, sizeof i->transport, "%s%s", s->mcast ? "MCAST" : tcp ? "TCP" : "UDP",
				 s->srtp_buf ? "/SRTP" : "");
			i->state = (uint32_t)s->state;
			i->age_s = (uint32_t)((now - s->created_us) / 1000000);
			i->bytes = s->bytes_out;
			i->bitrate = s->bitrate;
			i->skips = s->skips;
		}
		hdr->count = n;
		hdr->more = s != NULL;
		int e = ipc_send(w->ipc_fd, IPC_SESSIONS, query, msg, sizeof *hdr + n * sizeof *info, -1);
		if (e < 0) {
			log_warn("IPC SESSIONS: %s", strerror(-e));
			return;
		}
	} while (s);
}

/* IPC_KICK: the operator ends one session (RTCP BYE, then its connection). */
static void worker_kick(struct worker *w, uint32_t query, const char *id)
{
	int32_t result = -ENOENT;
	struct session *s = session_find(w, id);
	if (s) {
		log_tagged(LOG_WARN, &(struct log_tags){ .client = s->peer, .session = s->id }, "session %s ended by the operator (rtspctl kick)", s->id);
		/* The connection goes too: the TCP carrier, or for UDP the
		 * connection the session was set up on, if it is still open. */
		struct client *c = s->client ? s->client : s->setup_client;
		session_end(s, true);
		if (c) {
			client_flush(c);
			client_close(c);
		}
		result = 0;
		worker_send_status(w);
	}
	ipc_send(w->ipc_fd, IPC_KICK_RESULT, query, &result, sizeof result, -1);
}

void worker_status_changed(struct worker *w)
{
	worker_send_status(w);
}

static int64_t worker_housekeeping(struct ev_loop *loop, long long id, void *arg)
{
	struct worker *w = arg;
	int64_t now = ev_now_us();
	uint64_t round = ++w->housekeeping_round;
	for (struct session *s = w->sessions; s; s = s->next)
		session_housekeeping(s, now);
	/* The connection a live session was set up on is never closed as
	 * idle: the session's own timeout (its RTCP, a talker's audio, any
	 * request) governs, and closing it would end a multicast or
	 * back-channel session. One pass marks them all. */
	for (struct session *s = w->sessions; s; s = s->next)
		if (!s->dead && s->setup_client)
			s->setup_client->session_mark = round;
	mcast_housekeeping(w, now);
	int64_t idle = (int64_t)w->cfg.session_timeout * 1000000;
	for (struct client *c = w->clients; c; c = c->next) {
		if (!c->dead)
			tunnel_housekeeping(c, now);
		if (c->dead || c->session)
			continue;
		if (c->session_mark != round && now - c->last_activity_us > idle) {
			log_msg(LOG_INFO, NULL, c->peer, "idle connection closed");
			client_close(c);
		}
	}
	if (now - w->last_status_us >= 1000000) {
		w->last_status_us = now;
		worker_send_status(w);
	}
	return HOUSEKEEPING_MS;
}

static void worker_stop_now(struct worker *w)
{
	mcast_bye(w);
	for (struct session *s = w->sessions; s; s = s->next)
		if (!s->dead)
			session_end(s, true);
	for (struct client *c = w->clients; c; c = c->next) {
		client_flush(c);
		client_close(c);
	}
	w->draining = true;
	w->stopping = true;
	ev_stop(w->loop);
}

static int worker_configure(struct worker *w, const struct ipc_worker_config *cfg)
{
	w->cfg = *cfg;
	w->cfg.stream_key[sizeof w->cfg.stream_key - 1] = 0;
	w->cfg.file_path[sizeof w->cfg.file_path - 1] = 0;
	log_init("worker", cfg->log_level, cfg->log_enable);
	log_set_stream(w->cfg.stream_key);
	fflog_init();
	char err[512] = "";
	struct media_params mp = {
		.source_kind = (int)cfg->source_kind, .path = w->cfg.file_path, .loop_nums = cfg->loop_nums,
		.live = cfg->live,
		.ring_slots = (uint32_t)cfg->ring_size_kb,   /* ~1 slot per KiB of data */
		.ring_bytes = (uint32_t)cfg->ring_size_kb * 1024,
	};
	int r;
	if (cfg->live) {
		r = media_open(&w->live, w->loop, &mp, sessions_notify, w, err, sizeof err);
		if (r == 0)
			r = media_play(w->live);
	} else {
		mp.ring_slots = 64;
		mp.ring_bytes = 64 * 1024;
		r = media_open(&w->describe_media, w->loop, &mp, sessions_notify, w, err, sizeof err);
	}
	w->configured = true;
	if (r < 0) {
		/* Stay up and answer 404 to this stream's clients with the reason in
		 * the log; the master retires us when idle. */
		log_error("cannot open the source: %s", err);
		media_close(&w->live);
		media_close(&w->describe_media);
		ipc_send(w->ipc_fd, IPC_SOURCE_ERROR, 0, err, strlen(err) + 1, -1);
		return 0;
	}
	log_info("serving %s (%s)", cfg->source_kind == SOURCE_TEST ? "the test pattern" : w->cfg.file_path,
		 cfg->live ? "live" : "on demand");
	ipc_send(w->ipc_fd, IPC_READY, 0, NULL, 0, -1);
	return 0;
}

static void worker_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	static uint8_t buf[IPC_MAX_PAYLOAD];
	for (;;) {
		struct ipc_hdr hdr;
		int cfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, buf, sizeof buf, &cfd);
		if (n == -EAGAIN)
			return;
		if (n == -EPIPE || n == -ECONNRESET) {
			log_info("master went away, stopping");
			worker_stop_now(w);
			return;
		}
		if (n < 0) {
			log_error("bad IPC message from the master: %s", strerror((int)-n));
			if (n == -EPROTO)
				continue;
			worker_stop_now(w);
			return;
		}
		log_trace("IPC %s (%zd bytes)", ipc_type_name(hdr.type), n);
		switch (hdr.type) {
		case IPC_WORKER_CONFIG:
			if ((size_t)n != sizeof(struct ipc_worker_config) || w->configured) {
				log_error("IPC WORKER_CONFIG: unexpected");
				break;
			}
			if (worker_configure(w, (const struct ipc_worker_config *)buf) < 0) {
				w->draining = true;
				ev_stop(loop);
				return;
			}
			break;
		case IPC_CLIENT: {
			const struct ipc_client *ic = (const void *)buf;
			if (cfd < 0 || (size_t)n < sizeof *ic || ic->nbytes > IPC_MAX_PAYLOAD || ic->raw_nbytes > IPC_MAX_PAYLOAD ||
			    sizeof *ic + ic->nbytes + ic->raw_nbytes != (size_t)n || !w->configured) {
				log_error("IPC CLIENT: malformed, connection dropped");
				if (cfd >= 0)
					close(cfd);
				break;
			}
			if (!client_new(w, cfd, ic, buf + sizeof *ic)) {
				log_error("cannot take a connection (out of memory)");
				close(cfd);
			}
			cfd = -1;
			break;
		}
		case IPC_SHUTDOWN: {
			int32_t graceful = 0;
			if (n == sizeof graceful)
				memcpy(&graceful, buf, sizeof graceful);
			if (graceful && (w->nclients || w->nsessions)) {
				log_info("draining: exit when the last client leaves");
				w->draining = true;
			} else {
				worker_stop_now(w);
			}
			break;
		}
		case IPC_LOG_LEVEL: {
			int32_t lvl;
			if (n == sizeof lvl) {
				memcpy(&lvl, buf, sizeof lvl);
				log_set_level(lvl);
				fflog_init();
			}
			break;
		}
		case IPC_SESSIONS_QUERY:
			worker_send_sessions(w, hdr.peer);
			break;
		case IPC_KICK: {
			char id[64];
			size_t len = (size_t)n < sizeof id - 1 ? (size_t)n : sizeof id - 1;
			memcpy(id, buf, len);
			id[len] = 0;
			worker_kick(w, hdr.peer, id);
			break;
		}
		case IPC_TALK_RESULT:
			if ((size_t)n == sizeof(struct ipc_talk_result)) {
				struct ipc_talk_result r;
				memcpy(&r, buf, sizeof r);
				r.reason[sizeof r.reason - 1] = 0;
				backchannel_result(w, hdr.peer, &r);
			}
			break;
		default:
			log_warn("IPC %s: not expected by a worker", ipc_type_name(hdr.type));
		}
		if (cfd >= 0)
			close(cfd);
	}
}

static void worker_on_signal(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %d: stopping", si.ssi_signo);
			worker_stop_now(w);
		}
	}
}

int worker_main(int ipc_fd)
{
	struct worker w = { .ipc_fd = ipc_fd, .next_port_block = -1 };
	log_init("worker", LOG_INFO, true);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 1;   /* the master died before we could start */
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	char host[64] = "localhost";
	gethostname(host, sizeof host - 1);
	snprintf(w.cname, sizeof w.cname, "rtspd@%s", host);
	w.loop = ev_create();
	if (!w.loop || sfd < 0)
		return 1;
	ev_add(w.loop, ipc_fd, EPOLLIN, worker_on_ipc, &w);
	ev_add(w.loop, sfd, EPOLLIN, worker_on_signal, &w);
	w.housekeeping_timer = ev_timer_add(w.loop, HOUSEKEEPING_MS, worker_housekeeping, &w);
	ev_run(w.loop);
	/* Out of the loop: give queued BYEs a last chance, then free everything. */
	for (struct client *c = w.clients; c; c = c->next) {
		c->dead = false;
		client_flush(c);
		c->dead = true;
	}
	for (struct session *s = w.sessions; s; s = s->next)
		s->dead = true;
	worker_reap(&w);
	mcast_close(&w);
	media_close(&w.live);
	media_close(&w.describe_media);
	ev_del(w.loop, ipc_fd);
	ev_del(w.loop, sfd);
	close(sfd);
	close(ipc_fd);
	ev_destroy(w.loop);
	int code = w.configured ? 0 : 2;
	return code;
}
