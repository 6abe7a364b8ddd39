/* talk.c — the master's side of the audio back channel: one talker per
 * ALSA device, each played by a talk process of its own (talk/talk.h).
 *
 * A worker whose client SETs UP the back-channel track sends
 * IPC_TALK_ACQUIRE with its end of a packet socket and waits. The master
 * refuses (453) when the device already has a talker, else starts
 * "rtspd --talk", hands it the socket (IPC_TALK_START) and answers the
 * worker when the device is open (200) or could not be (503, with
 * ALSA's reason). The talk process exits when the worker closes the
 * socket (TEARDOWN, timeout, disconnect, crash); reaping it frees the
 * device.
 *
 * Between the two, the worker says IPC_TALK_RELEASE and the talk process
 * plays out what it holds (tens of ms). A SETUP for the device then waits
 * for the reaping (at most TALK_WAIT_MS) instead of getting 453: a client
 * that TEARs DOWN and talks again at once finds the device free.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/log.h"
#include "master/master.h"

/* Longer than any talk process takes to play out its jitter buffer and
 * drain ALSA's 100 ms buffer. */
#define TALK_WAIT_MS 2000

static struct proc *worker_of(struct master *m, pid_t pid)
{
	for (struct proc *p = m->procs; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

static void answer(struct master *m, struct talk_proc *t, int status, const char *reason)
{
	if (t->answered)
		return;
	t->answered = true;
	struct proc *p = worker_of(m, t->worker_pid);
	if (!p)
		return;
	struct ipc_talk_result r = { .status = status };
	snprintf(r.reason, sizeof r.reason, "%s", reason ? reason : "");
	ipc_send(p->ipc_fd, IPC_TALK_RESULT, t->request_id, &r, sizeof r, -1);
}

static void refuse(struct proc *p, uint32_t request_id, int status, const char *reason)
{
	struct ipc_talk_result r = { .status = status };
	snprintf(r.reason, sizeof r.reason, "%s", reason);
	ipc_send(p->ipc_fd, IPC_TALK_RESULT, request_id, &r, sizeof r, -1);
}

static void talk_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct talk_proc *t = arg;
	struct master *m = t->m;
	static uint8_t buf[IPC_MAX_PAYLOAD];
	struct log_tags tags = { .stream = t->info.stream, .client = t->info.client, .session = t->info.session,
				 .worker_pid = t->pid };
	for (;;) {
		struct ipc_hdr hdr;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, buf, sizeof buf - 1, &rfd);
		if (rfd >= 0)
			close(rfd);
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO)
			continue;
		if (n < 0) {
			ev_del(loop, fd);   /* gone: SIGCHLD does the rest */
			return;
		}
		switch (hdr.type) {
		case IPC_TALK_READY:
			answer(m, t, 200, NULL);
			break;
		case IPC_TALK_ERROR:
			buf[n] = 0;
			log_tagged(LOG_ERROR, &tags, "back channel refused: %s", (const char *)buf);
			answer(m, t, 503, (const char *)buf);
			break;
		case IPC_TALK_STATUS:
			if ((size_t)n == sizeof t->status)
				memcpy(&t->status, buf, sizeof t->status);
			break;
		default:
			log_warn("talk pid %d: unexpected IPC %s", (int)t->pid, ipc_type_name(hdr.type));
		}
	}
}

/* "DIR/talk-<date>-<session>.wav" when the config records talks. */
static void wav_path(const struct rtspd_config *cfg, const char *session, char *out, size_t len)
{
	out[0] = 0;
	if (!cfg->backchannel.wav_dir[0])
		return;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char when[32];
	strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(out, len, "%.800s/talk-%s-%.24s.wav", cfg->backchannel.wav_dir, when, session);
}

static int64_t talk_wait_expired(struct ev_loop *loop, long long id, void *arg)
{
	struct talk_wait *w = arg;
	struct master *m = w->m;
	for (struct talk_wait **pp = &m->talk_waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	struct proc *p = worker_of(m, w->worker_pid);
	log_msg(LOG_WARN, w->req.stream, w->req.client,
		"453: back channel busy: the previous talker's process did not end within %d ms", TALK_WAIT_MS);
	if (p)
		refuse(p, w->request_id, 453, "the audio device is still in use by the previous talker");
	close(w->fd);
	free(w);
	return -1;
}

/* 0 when the request now waits for the device (it owns fd then). */
static int talk_wait(struct master *m, struct proc *p, uint32_t request_id, const struct ipc_talk *req, int fd)
{
	struct talk_wait *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->m = m;
	w->worker_pid = p->pid;
	w->request_id = request_id;
	w->fd = fd;
	w->req = *req;
	w->timer = ev_timer_add(m->loop, TALK_WAIT_MS, talk_wait_expired, w);
	if (w->timer < 0) {
		free(w);
		return -ENOMEM;
	}
	struct talk_wait **pp = &m->talk_waits;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	log_msg(LOG_DEBUG, req->stream, req->client, "back channel: waiting for the previous talker to end");
	return 0;
}

/* A device may be free: the waiting requests, oldest first, ask again. */
static void talk_retry_waits(struct master *m)
{
	struct talk_wait *list = m->talk_waits;
	m->talk_waits = NULL;
	while (list) {
		struct talk_wait *w = list;
		list = w->next;
		ev_timer_del(m->loop, w->timer);
		struct proc *p = worker_of(m, w->worker_pid);
		if (p)
			talk_acquire(m, p, w->request_id, &w->req, w->fd);
		else
			close(w->fd);   /* the worker is gone, and its session with it */
		free(w);
	}
}

void talk_released(struct master *m, struct proc *p, uint32_t request_id)
{
	for (struct talk_proc *t = m->talks; t; t = t->next)
		if (t->worker_pid == p->pid && t->request_id == request_id)
			t->ending = true;
}

void talk_acquire(struct master *m, struct proc *p, uint32_t request_id, const struct ipc_talk *req, int fd)
{
	const char *device = m->cfg.backchannel.device[0] ? m->cfg.backchannel.device : "default";
	if (!m->cfg.backchannel.enable) {
		refuse(p, request_id, 551, "the back channel is not enabled");
		close(fd);
		return;
	}
	for (struct talk_proc *t = m->talks; t; t = t->next)
		if (!strcmp(t->info.device, device)) {
			if (t->ending && talk_wait(m, p, request_id, req, fd) == 0)
				return;
			char why[256];
			snprintf(why, sizeof why, "ALSA device '%.64s' is in use by %.64s (stream %.64s)", device,
				 t->info.client, t->info.stream);
			log_msg(LOG_INFO, req->stream, req->client, "453: back channel busy: %s", why);
			refuse(p, request_id, 453, why);
			close(fd);
			return;
		}
	char *argv[] = { "rtspd", "--talk", NULL };
	int ipc_fd;
	pid_t pid = m->stopping ? -1 : supervisor_fork(m, argv, &ipc_fd);
	struct talk_proc *t = pid < 0 ? NULL : calloc(1, sizeof *t);
	if (!t) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			close(ipc_fd);
		}
		refuse(p, request_id, 503, "cannot start the talk process");
		close(fd);
		return;
	}
	t->m = m;
	t->pid = pid;
	t->ipc_fd = ipc_fd;
	t->worker_pid = p->pid;
	t->request_id = request_id;
	t->started_us = ev_now_us();
	t->info = *req;
	snprintf(t->info.device, sizeof t->info.device, "%s", device);
	wav_path(&m->cfg, req->session, t->info.wav_path, sizeof t->info.wav_path);
	t->info.log_level = m->cfg.log_level;
	t->info.log_enable = m->cfg.log_enable;
	t->next = m->talks;
	m->talks = t;
	ev_add(m->loop, ipc_fd, EPOLLIN, talk_on_ipc, t);
	int e = ipc_send(ipc_fd, IPC_TALK_START, 0, &t->info, sizeof t->info, fd);
	close(fd);   /* the talk process owns its copy now */
	if (e < 0)
		answer(m, t, 503, "cannot reach the talk process");
	log_tagged(LOG_INFO, &(struct log_tags){ .stream = req->stream, .client = req->client,
						 .session = req->session, .worker_pid = pid },
		   "talk process pid %d started for ALSA device '%s'", (int)pid, device);
}

bool talk_reaped(struct master *m, pid_t pid, int status)
{
	struct talk_proc **pp = &m->talks, *t = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid) {
			t = *pp;
			*pp = t->next;
			break;
		}
	if (!t)
		return false;
	struct log_tags tags = { .stream = t->info.stream, .client = t->info.client, .session = t->info.session,
				 .worker_pid = pid };
	if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status)))
		log_tagged(LOG_ERROR, &tags, "talk process pid %d %s %d: the ALSA device '%s' is free again", (int)pid,
			   WIFSIGNALED(status) ? "killed by signal" : "exited with status",
			   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), t->info.device);
	else
		log_tagged(LOG_INFO, &tags, "talk ended: the ALSA device '%s' is free", t->info.device);
	answer(m, t, 503, "the talk process ended before the device was open");
	ev_del(m->loop, t->ipc_fd);
	close(t->ipc_fd);
	free(t);
	talk_retry_waits(m);
	return true;
}

void talk_stop_all(struct master *m)
{
	int32_t g = 0;
	for (struct talk_proc *t = m->talks; t; t = t->next)
		ipc_send(t->ipc_fd, IPC_SHUTDOWN, 0, &g, sizeof g, -1);
}

void talk_kill_all(struct master *m)
{
	while (m->talk_waits) {
		struct talk_wait *w = m->talk_waits;
		m->talk_waits = w->next;
		ev_timer_del(m->loop, w->timer);
		close(w->fd);
		free(w);
	}
	for (struct talk_proc *t = m->talks; t; t = t->next)
		kill(t->pid, SIGKILL);
}

void talk_log_level(struct master *m, int level)
{
	int32_t l = level;
	for (struct talk_proc *t = m->talks; t; t = t->next)
		ipc_send(t->ipc_fd, IPC_LOG_LEVEL, 0, &l, sizeof l, -1);
}
