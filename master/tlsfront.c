/* tlsfront.c — the master's side of the TLS front process (tls/tls.h).
 *
 * The master accepts on the TLS listeners like on any other, but sends
 * each new fd to the TLS front (IPC_TLS_CONN) instead of reading it: the
 * handshake never runs in the master's loop. When the handshake is done
 * the front sends back the plain end of a socketpair (IPC_TLS_PLAIN) with
 * the client's real addresses, and the master takes it as a new
 * connection (master_take_connection), routes its first request, and the
 * worker gets it flagged IPC_CLIENT_TLS.
 *
 * One front is current. Every reload starts a new one, which reads the
 * certificates and keys afresh (renewed files keep their paths), and lets
 * the old one relay until its connections end. A crash costs the TLS connections it carried; the next
 * front starts at once the first time, then with a growing back-off.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "master/master.h"
#include "tls/tls.h"

#define TLS_HANDSHAKE_TIMEOUT_MS 10000

static bool tls_wanted(const struct rtspd_config *cfg)
{
	return cfg->rtsps_enable || cfg->rtsp_over_https;
}

static void tls_config_of(const struct rtspd_config *cfg, struct ipc_tls_config *tc)
{
	memset(tc, 0, sizeof *tc);
	if (cfg->rtsps_enable) {
		snprintf(tc->rtsps_cert, sizeof tc->rtsps_cert, "%s", cfg->rtsps_cert);
		snprintf(tc->rtsps_key, sizeof tc->rtsps_key, "%s", cfg->rtsps_key);
	}
	if (cfg->rtsp_over_https) {
		snprintf(tc->https_cert, sizeof tc->https_cert, "%s", cfg->https_cert);
		snprintf(tc->https_key, sizeof tc->https_key, "%s", cfg->https_key);
	}
	tc->handshake_timeout_ms = TLS_HANDSHAKE_TIMEOUT_MS;
	tc->log_level = cfg->log_level;
	tc->log_enable = cfg->log_enable;
}

int tls_front_check_config(const struct rtspd_config *cfg, char *err, size_t errlen)
{
	char why[900];
	if (cfg->rtsps_enable && tls_check_files(cfg->rtsps_cert, cfg->rtsps_key, why, sizeof why) < 0) {
		snprintf(err, errlen, "RTSPS (<rtsps_cert>/<rtsps_key>): %s", why);
		return -EINVAL;
	}
	if (cfg->rtsp_over_https && tls_check_files(cfg->https_cert, cfg->https_key, why, sizeof why) < 0) {
		snprintf(err, errlen, "RTSP over HTTPS (<https_cert>/<https_key>): %s", why);
		return -EINVAL;
	}
	return 0;
}

static void tls_on_ipc(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct tls_proc *t = arg;
	struct master *m = t->m;
	for (;;) {
		struct ipc_hdr hdr;
		struct ipc_tls_conn info;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, &info, sizeof info, &rfd);
		if (n == -EAGAIN)
			return;
		if (n == -EPROTO) {
			log_warn("TLS front pid %d: malformed IPC message dropped", (int)t->pid);
			continue;
		}
		if (n < 0) {
			ev_del(loop, fd);   /* gone; SIGCHLD does the bookkeeping */
			return;
		}
		if (hdr.type == IPC_TLS_PLAIN && (size_t)n == sizeof info && rfd >= 0 &&
		    (info.kind == TLS_RTSPS || info.kind == TLS_HTTPS)) {
			master_take_connection(m, rfd, &info.peer, &info.local, true);
			continue;
		}
		log_warn("TLS front pid %d: unexpected IPC %s", (int)t->pid, ipc_type_name(hdr.type));
		if (rfd >= 0)
			close(rfd);
	}
}

static struct tls_proc *tls_spawn(struct master *m)
{
	char *argv[] = { "rtspd", "--tls", NULL };
	int ipc_fd;
	pid_t pid = supervisor_fork(m, argv, &ipc_fd);
	if (pid < 0)
		return NULL;
	struct tls_proc *t = calloc(1, sizeof *t);
	if (!t) {
		kill(pid, SIGKILL);
		close(ipc_fd);
		return NULL;
	}
	t->m = m;
	t->pid = pid;
	t->ipc_fd = ipc_fd;
	t->started_us = ev_now_us();
	tls_config_of(&m->cfg, &t->tc);
	t->next = m->tls_procs;
	m->tls_procs = t;
	ipc_send(ipc_fd, IPC_TLS_CONFIG, 0, &t->tc, sizeof t->tc, -1);
	ev_add(m->loop, ipc_fd, EPOLLIN, tls_on_ipc, t);
	log_warn("TLS front started (pid %d)", (int)pid);
	return t;
}

void tls_front_start(struct master *m)
{
	if (m->stopping || m->tls_current || !tls_wanted(&m->cfg) || ev_now_us() < m->tls_backoff_until_us)
		return;
	m->tls_current = tls_spawn(m);
}

void tls_front_hand_off(struct master *m, int fd, int kind, const struct sockaddr_storage *peer,
			const struct sockaddr_storage *local)
{
	struct tls_proc *t = m->tls_current;
	if (m->stopping || !t) {
		/* Nothing can speak TLS to it now: a plain answer would only
		 * confuse its TLS stack, so the connection is just closed. */
		log_msg(LOG_WARN, NULL, NULL, "TLS connection refused: the TLS front is not running%s",
			m->stopping ? " (stopping)" : "");
		close(fd);
		return;
	}
	struct ipc_tls_conn info = { .conn_id = 0, .kind = (uint32_t)kind, .peer = *peer, .local = *local };
	int e = ipc_send(t->ipc_fd, IPC_TLS_CONN, 0, &info, sizeof info, fd);
	if (e < 0)
		log_warn("cannot hand a TLS connection to the TLS front pid %d: %s", (int)t->pid, strerror(-e));
	close(fd);   /* the front owns its copy now */
}

bool tls_front_reaped(struct master *m, pid_t pid, int status)
{
	struct tls_proc **pp = &m->tls_procs, *t = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid) {
			t = *pp;
			*pp = t->next;
			break;
		}
	if (!t)
		return false;
	bool crash = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
	bool current = m->tls_current == t;
	if (current)
		m->tls_current = NULL;
	if (crash && !t->stop_sent) {
		int64_t now = ev_now_us();
		/* A front that ran for a minute starts the count afresh. */
		if (now - t->started_us > 60000000)
			m->tls_crashes = 0;
		int64_t delay = m->tls_crashes ? 1000000LL << (m->tls_crashes > 5 ? 5 : m->tls_crashes - 1) : 0;
		if (delay > 30000000)
			delay = 30000000;
		m->tls_crashes++;
		m->tls_backoff_until_us = now + delay;
		log_error("TLS front pid %d %s %d: its TLS connections are lost; a new one starts in %.0f s", (int)pid,
			  WIFSIGNALED(status) ? "killed by signal" : "exited with status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (double)delay / 1e6);
	} else {
		log_warn("TLS front pid %d stopped", (int)pid);
	}
	ev_del(m->loop, t->ipc_fd);
	close(t->ipc_fd);
	free(t);
	if (current)
		tls_front_start(m);
	return true;
}

void tls_front_tick(struct master *m)
{
	tls_front_start(m);
}

static void tls_stop(struct tls_proc *t, bool graceful)
{
	if (t->stop_sent && graceful)
		return;
	int32_t g = graceful;
	ipc_send(t->ipc_fd, IPC_SHUTDOWN, 0, &g, sizeof g, -1);
	t->stop_sent = true;
	if (t->m->tls_current == t)
		t->m->tls_current = NULL;
}

void tls_front_stop_all(struct master *m, bool graceful)
{
	for (struct tls_proc *t = m->tls_procs; t; t = t->next)
		tls_stop(t, graceful);
}

void tls_front_kill_all(struct master *m)
{
	for (struct tls_proc *t = m->tls_procs; t; t = t->next) {
		log_warn("TLS front pid %d did not stop in time: SIGKILL", (int)t->pid);
		kill(t->pid, SIGKILL);
	}
}

void tls_front_log_level(struct master *m, int level)
{
	int32_t l = level;
	for (struct tls_proc *t = m->tls_procs; t; t = t->next)
		ipc_send(t->ipc_fd, IPC_LOG_LEVEL, 0, &l, sizeof l, -1);
}

void tls_front_reload(struct master *m, struct strbuf *rep)
{
	struct tls_proc *t = m->tls_current;
	if (t) {
		/* Even with the same paths the files may be new (a renewed
		 * certificate): a new front reads them; the old one relays the
		 * connections it has until they end. */
		strbuf_printf(rep, "  TLS front pid %d ends with its connections", (int)t->pid);
		tls_stop(t, true);
	}
	if (!tls_wanted(&m->cfg)) {
		if (t)
			strbuf_printf(rep, " (no TLS listener left)\n");
		return;
	}
	m->tls_backoff_until_us = 0;
	m->tls_crashes = 0;
	tls_front_start(m);
	if (m->tls_current)
		strbuf_printf(rep, "%scertificates re-read by the new TLS front pid %d\n", t ? "; " : "  ",
			      (int)m->tls_current->pid);
	else if (t)
		strbuf_printf(rep, "\n");
}
