/* supervisor.c — the master's worker table: spawn on demand, hand off
 * connections, reap, restart with back-off after crashes, retire idle ones.
 *
 * A worker is this same binary run as "rtspd --worker KEY" with its end of
 * a SOCK_SEQPACKET socketpair on fd 3. It receives IPC_WORKER_CONFIG first;
 * connections follow as IPC_CLIENT messages carrying the fd. A worker that
 * crashes only costs its own stream's viewers; the stream record remembers
 * the crash, and repeated crashes delay the next start (1, 2, 4 ... 30 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ipc.h"
#include "common/log.h"
#include "master/master.h"

static struct stream_rec *stream_get(struct master *m, const struct route *r, const char *file_path)
{
	for (struct stream_rec *s = m->streams; s; s = s->next)
		if (!strcmp(s->route.key, r->key)) {
			/* media_dir may have moved since (reload): the path that was
			 * just resolved is the one a new worker gets. */
			if (!s->current && file_path)
				snprintf(s->file_path, sizeof s->file_path, "%s", file_path);
			return s;
		}
	struct stream_rec *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->route = *r;
	/* Stream records are never freed, so the index (and with it the
	 * multicast group) stays the stream's own across worker restarts. */
	s->index = m->next_stream_index++;
	snprintf(s->file_path, sizeof s->file_path, "%s", file_path ? file_path : "");
	s->next = m->streams;
	m->streams = s;
	return s;
}

static void proc_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg);

void supervisor_worker_config(const struct rtspd_config *cfg, const struct stream_rec *s,
			      struct ipc_worker_config *wc)
{
	/* memset, not an initializer: reload compares these byte for byte. */
	memset(wc, 0, sizeof *wc);
	wc->source_kind = (uint32_t)s->route.kind;
	wc->live = s->route.live;
	wc->loop_nums = cfg->loop_nums;
	wc->udp_base_port = cfg->udp_base_port;
	wc->session_timeout = cfg->session_timeout;
	wc->slow_viewer_timeout = cfg->slow_viewer_timeout;
	wc->ring_size_kb = cfg->ring_size_kb;
	wc->log_level = cfg->log_level;
	wc->log_enable = cfg->log_enable;
	wc->max_sessions = cfg->max_sessions;
	wc->srtp_over_plain_rtsp = cfg->srtp_over_plain_rtsp;
	snprintf(wc->stream_key, sizeof wc->stream_key, "%s", s->route.key);
	snprintf(wc->file_path, sizeof wc->file_path, "%s", s->file_path);
	snprintf(wc->serverip, sizeof wc->serverip, "%s", cfg->serverip);
	wc->backchannel = cfg->backchannel.enable;
	wc->bc_audio = cfg->backchannel.audio;
	wc->multicast = cfg->multicast;
	wc->mcast_ttl = cfg->multicast_ttl;
	int port = 0;
	if (config_multicast_address(cfg, s->index, wc->mcast_group, sizeof wc->mcast_group, &port) == 0)
		wc->mcast_port = port;
	else
		wc->mcast_group[0] = 0;   /* no group: the worker refuses multicast SETUPs */
	const char *name = s->route.kind == SOURCE_TEST ? "test" : s->route.path;
	for (int i = 0; i < cfg->noutputs; i++) {
		const struct cfg_output *o = &cfg->outputs[i];
		if (!o->url[0] || !fnmatch(o->url, name, 0)) {
			wc->has_output = 1;
			wc->out_video = o->video;
			wc->out_audio = o->audio;
			break;
		}
	}
}

pid_t supervisor_fork(struct master *m, char *const argv[], int *ipc_fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("socketpair: %s", strerror(errno));
		return -1;
	}
	/* Room for many queued hand-offs while the child starts. */
	int sz = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* Child: only fd 0-2 and the IPC socket (as fd 3) survive exec. */
		if (sv[1] != 3) {
			dup2(sv[1], 3);
		} else {
			fcntl(3, F_SETFD, 0);
		}
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Only the master speaks to systemd (NotifyAccess=main). */
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		execv(m->self_exe, argv);
		_exit(127);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*ipc_fd = sv[0];
	return pid;
}

struct proc *supervisor_spawn(struct master *m, struct stream_rec *s)
{
	char *argv[] = { "rtspd", "--worker", s->route.key, NULL };
	int ipc_fd;
	pid_t pid = supervisor_fork(m, argv, &ipc_fd);
	if (pid < 0)
		return NULL;
	struct proc *p = calloc(1, sizeof *p);
	if (!p) {
		kill(pid, SIGKILL);
		close(ipc_fd);
		return NULL;
	}
	p->m = m;
	p->stream = s;
	p->pid = pid;
	p->ipc_fd = ipc_fd;
	p->state = PROC_STARTING;
	p->started_us = ev_now_us();
	p->idle_since_us = p->started_us;
	p->next = m->procs;
	m->procs = p;
	s->current = p;
	p->rate_prev_us = p->started_us;
	supervisor_worker_config(&m->cfg, s, &p->wc);
	ipc_send(p->ipc_fd, IPC_WORKER_CONFIG, 0, &p->wc, sizeof p->wc, -1);
	ev_add(m->loop, p->ipc_fd, EPOLLIN, proc_on_ipc, p);
	log_tagged(LOG_WARN, &(struct log_tags){ .stream = s->route.key, .worker_pid = pid }, "worker started (pid %d)",
		   (int)pid);
	return p;
}

static void proc_detach(struct proc *p)
{
	if (p->stream && p->stream->current == p)
		p->stream->current = NULL;
	p->stream = NULL;
}

void supervisor_stop_proc(struct proc *p, bool graceful)
{
	if (p->stop_sent && graceful)
		return;
	int32_t g = graceful;
	ipc_send(p->ipc_fd, IPC_SHUTDOWN, 0, &g, sizeof g, -1);
	p->stop_sent = true;
	p->state = PROC_DRAINING;
	proc_detach(p);
}

static void proc_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct proc *p = arg;
	static uint8_t buf[IPC_MAX_PAYLOAD];
	for (;;) {
		struct ipc_hdr hdr;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, buf, sizeof buf, &rfd);
		if (rfd >= 0 && n == (ssize_t)sizeof(struct ipc_talk) && hdr.type == IPC_TALK_ACQUIRE) {
			static struct ipc_talk req;
			memcpy(&req, buf, sizeof req);
			talk_acquire(p->m, p, hdr.peer, &req, rfd);
			continue;
		}
		if (rfd >= 0)
			close(rfd);     /* no other message carries an fd to the master */
		if (n == -EAGAIN)
			return;
		if (n < 0) {
			if (n != -EPROTO) {
				/* The worker is gone; SIGCHLD does the bookkeeping. */
				ev_del(loop, fd);
				return;
			}
			log_warn("worker pid %d: malformed IPC message dropped", (int)p->pid);
			continue;
		}
		const char *key = p->stream ? p->stream->route.key : NULL;
		switch (hdr.type) {
		case IPC_READY:
			if (p->state == PROC_STARTING)
				p->state = PROC_READY;
			break;
		case IPC_STATUS:
			if ((size_t)n == sizeof p->status) {
				memcpy(&p->status, buf, sizeof p->status);
				int64_t now = ev_now_us();
				if (now - p->rate_prev_us >= 900000) {
					uint64_t dt = (uint64_t)(now - p->rate_prev_us);
					p->bitrate_in = (p->status.bytes_in - p->rate_prev_in) * 8 * 1000000 / dt;
					p->bitrate_out = (p->status.bytes_out - p->rate_prev_out) * 8 * 1000000 / dt;
					p->rate_prev_in = p->status.bytes_in;
					p->rate_prev_out = p->status.bytes_out;
					p->rate_prev_us = now;
				}
				if (p->status.sessions)
					p->idle_since_us = 0;
				else if (!p->idle_since_us)
					p->idle_since_us = ev_now_us();
			}
			break;
		case IPC_SOURCE_ERROR:
			buf[n > 0 ? (size_t)n - 1 : 0] = 0;
			log_msg(LOG_ERROR, key, NULL, "worker pid %d cannot open its source: %s", (int)p->pid,
				(const char *)buf);
			break;
		case IPC_TALK_RELEASE:
			talk_released(p->m, p, hdr.peer);
			break;
		case IPC_SESSIONS:
		case IPC_KICK_RESULT:
			control_worker_reply(p->m, p, &hdr, buf, (size_t)n);
			break;
		default:
			log_warn("worker pid %d: unexpected IPC %s", (int)p->pid, ipc_type_name(hdr.type));
		}
	}
}

void supervisor_dispatch(struct master *m, const struct route *r, const char *file_path, int fd,
			 const struct ipc_client *ic_in, const uint8_t *bytes, size_t len, const uint8_t *raw,
			 size_t raw_len)
{
	bool ws = ic_in->flags & IPC_CLIENT_WS;
	const char *peer = ic_in->peer_addr;
	uint32_t conn_id = ic_in->conn_id;
	struct stream_rec *s = stream_get(m, r, file_path);
	if (!s) {
		master_reply(fd, ws, 503, -1, NULL);
		close(fd);
		return;
	}
	int64_t now = ev_now_us();
	struct proc *p = s->current;
	if (!p) {
		if (now < s->backoff_until_us) {
			int secs = (int)((s->backoff_until_us - now + 999999) / 1000000);
			char extra[64];
			snprintf(extra, sizeof extra, "Retry-After: %d\r\n", secs);
			log_msg(LOG_WARN, r->key, peer, "503: the stream's worker is in crash back-off for %d s more", secs);
			master_reply(fd, ws, 503, -1, extra);
			close(fd);
			return;
		}
		p = supervisor_spawn(m, s);
		if (!p) {
			master_reply(fd, ws, 503, -1, NULL);
			close(fd);
			return;
		}
	}
	uint8_t msg[sizeof(struct ipc_client) + 2 * FIRST_REQUEST_MAX];
	struct ipc_client ic = *ic_in;
	ic.nbytes = (uint32_t)len;
	ic.raw_nbytes = (uint32_t)raw_len;
	memcpy(msg, &ic, sizeof ic);
	memcpy(msg + sizeof ic, bytes, len);
	if (raw_len)
		memcpy(msg + sizeof ic + len, raw, raw_len);
	int e = ipc_send(p->ipc_fd, IPC_CLIENT, conn_id, msg, sizeof ic + len + raw_len, fd);
	if (e < 0) {
		log_msg(LOG_WARN, r->key, peer, "503: cannot hand the connection to worker %d: %s", (int)p->pid,
			strerror(-e));
		master_reply(fd, ws, 503, -1, NULL);
	} else {
		log_msg(LOG_DEBUG, r->key, peer, "connection %u handed to worker %d", conn_id, (int)p->pid);
		p->idle_since_us = now;
	}
	close(fd);   /* the worker owns its copy now */
}

static void describe_exit(int status, char *buf, size_t len, bool *crash)
{
	*crash = false;
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);
		snprintf(buf, len, "exited with status %d", code);
		*crash = code != 0 && code != 2;
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		snprintf(buf, len, "killed by signal %d (%s)%s", sig, strsignal(sig),
			 WCOREDUMP(status) ? ", core dumped" : "");
		*crash = true;
	} else {
		snprintf(buf, len, "stopped (status 0x%x)", status);
	}
}

static void stream_crashed(struct master *m, struct stream_rec *s)
{
	int64_t now = ev_now_us();
	s->restarts++;
	if (s->ncrash == CRASH_HISTORY) {
		memmove(s->crash_us, s->crash_us + 1, sizeof s->crash_us[0] * (CRASH_HISTORY - 1));
		s->ncrash--;
	}
	s->crash_us[s->ncrash++] = now;
	int recent = 0;
	for (int i = 0; i < s->ncrash; i++)
		if (now - s->crash_us[i] < CRASH_WINDOW_US)
			recent++;
	if (recent >= 2) {
		int64_t delay = 1000000LL << (recent - 2 > 5 ? 5 : recent - 2);
		if (delay > 30000000)
			delay = 30000000;
		s->backoff_until_us = now + delay;
		log_msg(LOG_WARN, s->route.key, NULL,
			"%d crashes in %d s: back-off, the next worker starts in %.0f s at the earliest",
			recent, (int)(CRASH_WINDOW_US / 1000000), (double)delay / 1e6);
	} else {
		log_msg(LOG_WARN, s->route.key, NULL, "restart: a new worker starts with the next viewer");
	}
}

void supervisor_reap(struct master *m)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		if (tls_front_reaped(m, pid, status) || talk_reaped(m, pid, status))
			continue;
		struct proc **pp = &m->procs, *p = NULL;
		for (; *pp; pp = &(*pp)->next)
			if ((*pp)->pid == pid) {
				p = *pp;
				*pp = p->next;
				break;
			}
		if (!p)
			continue;
		char how[128];
		bool crash;
		describe_exit(status, how, sizeof how, &crash);
		struct stream_rec *s = p->stream;
		const char *key = s ? s->route.key : NULL;
		if (!key)
			key = p->wc.stream_key;
		struct log_tags tags = { .stream = key, .worker_pid = pid };
		if (crash && !p->stop_sent) {
			log_tagged(LOG_ERROR, &tags, "worker pid %d crashed: %s (restart #%d)", (int)pid, how,
				   s ? s->restarts + 1 : 0);
			if (s)
				stream_crashed(m, s);
		} else {
			log_tagged(LOG_WARN, &tags, "worker pid %d %s", (int)pid, how);
		}
		control_worker_gone(m, pid);
		proc_detach(p);
		ev_del(m->loop, p->ipc_fd);
		close(p->ipc_fd);
		free(p);
	}
}

void supervisor_tick(struct master *m)
{
	tls_front_tick(m);
	int64_t now = ev_now_us();
	int64_t idle = (int64_t)m->cfg.worker_idle_timeout * 1000000;
	for (struct proc *p = m->procs; p; p = p->next) {
		if (p->state == PROC_DRAINING || !p->idle_since_us)
			continue;
		if (now - p->idle_since_us >= idle) {
			log_tagged(LOG_INFO, &(struct log_tags){ .stream = p->wc.stream_key, .worker_pid = p->pid },
				   "worker pid %d idle for %d s: stopping it", (int)p->pid, m->cfg.worker_idle_timeout);
			supervisor_stop_proc(p, true);
		}
	}
}

void supervisor_stop_all(struct master *m)
{
	for (struct proc *p = m->procs; p; p = p->next)
		supervisor_stop_proc(p, false);
	/* The TLS front ends when its connections do: the workers' BYEs and
	 * last responses still go out through it. */
	tls_front_stop_all(m, true);
	talk_stop_all(m);
}

bool supervisor_all_gone(const struct master *m)
{
	return m->procs == NULL && m->tls_procs == NULL && m->talks == NULL;
}

int supervisor_restart(struct master *m, const char *key, char *msg, size_t msglen)
{
	struct stream_rec *s = m->streams;
	while (s && strcmp(s->route.key, key))
		s = s->next;
	if (!s) {
		snprintf(msg, msglen, "no stream '%.1024s' (rtspctl status lists them)", key);
		return -ENOENT;
	}
	if (s->route.kind == SOURCE_FILE) {
		char file[CFG_PATH];
		int e = master_resolve_file(m->media_root, s->route.path, file, sizeof file);
		if (e < 0) {
			snprintf(msg, msglen, "%.1024s: the file is no longer in media_dir", key);
			return e;
		}
		snprintf(s->file_path, sizeof s->file_path, "%s", file);
	}
	pid_t old = s->current ? s->current->pid : 0;
	if (s->current)
		supervisor_stop_proc(s->current, false);
	s->restarts++;
	s->backoff_until_us = 0;
	struct proc *p = supervisor_spawn(m, s);
	if (!p) {
		snprintf(msg, msglen, "%.1024s: cannot start a worker", key);
		return -EAGAIN;
	}
	if (old)
		snprintf(msg, msglen, "%.1024s: worker pid %d stopped (its viewers got BYE), new worker pid %d", key,
			 (int)old, (int)p->pid);
	else
		snprintf(msg, msglen, "%.1024s: worker pid %d started", key, (int)p->pid);
	return 0;
}

void supervisor_broadcast_log_level(struct master *m, int level)
{
	int32_t l = level;
	for (struct proc *p = m->procs; p; p = p->next)
		ipc_send(p->ipc_fd, IPC_LOG_LEVEL, 0, &l, sizeof l, -1);
	tls_front_log_level(m, level);
	talk_log_level(m, level);
}

void supervisor_kill_all(struct master *m)
{
	for (struct proc *p = m->procs; p; p = p->next) {
		log_warn("worker pid %d did not stop in time: SIGKILL", (int)p->pid);
		kill(p->pid, SIGKILL);
	}
	tls_front_kill_all(m);
	talk_kill_all(m);
}
