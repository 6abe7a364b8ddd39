/* control.c — the master's control socket, what rtspctl talks to.
 *
 * An AF_UNIX SOCK_SEQPACKET socket at <control_socket>, mode 0660. Each
 * connection carries one command (proto/ctl.h): the master checks the
 * peer's credentials (root, the server's own user, or a member of its
 * group), runs the command and answers with IPC_CTL_OUTPUT pieces and one
 * IPC_CTL_DONE, then closes. Commands that need the workers (status, kick)
 * send them a query and answer when every worker has replied or after
 * CTL_QUERY_TIMEOUT_US, so a hung worker cannot hang rtspctl.
 *
 * Ownership: the master owns every ctl_conn and its socket; answers that do
 * not fit in the socket buffer wait in the connection's queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ipc.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "master/master.h"
#include "proto/ctl.h"

#define CTL_QUERY_TIMEOUT_US 1500000
#define CTL_MAX_CONNS 32
#define CTL_IDLE_TIMEOUT_US 10000000

struct ctl_msg {
	struct ctl_msg *next;
	uint16_t type;
	size_t len;
	uint8_t data[];
};

struct ctl_session {
	struct ipc_session_info info;
	pid_t pid;
};

enum ctl_wait { CTL_WAIT_NONE, CTL_WAIT_SESSIONS, CTL_WAIT_KICK };

struct ctl_conn {
	struct ctl_conn *next, *prev;
	struct master *m;
	int fd;
	uid_t uid;
	pid_t peer_pid;
	int64_t deadline_us;
	struct ctl_msg *outq, *outq_tail;
	bool done;                   /* IPC_CTL_DONE queued: close once sent */
	bool denied;                 /* peer not allowed: refused when its request arrives */
	bool stop_after;             /* "stop": begin stopping once answered */
	/* a query to the workers in flight */
	enum ctl_wait wait;
	uint32_t query;
	pid_t *awaiting;             /* workers that have not answered */
	int nawaiting;
	bool json;
	bool kicked;
	char kick_id[64];
	struct ctl_session *sessions;
	size_t nsessions, cap;
};

static void ctl_conn_free(struct ctl_conn *c)
{
	struct master *m = c->m;
	ev_del(m->loop, c->fd);
	close(c->fd);
	while (c->outq) {
		struct ctl_msg *q = c->outq;
		c->outq = q->next;
		free(q);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		m->ctl_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->awaiting);
	free(c->sessions);
	bool stop = c->stop_after;
	free(c);
	if (stop)
		master_stop(m);
}

static void ctl_on_io(struct ev_loop *loop, int fd, uint32_t events, void *arg);

/* Sends what is queued; closes the connection once DONE went out. */
static void ctl_flush(struct ctl_conn *c)
{
	while (c->outq) {
		struct ctl_msg *q = c->outq;
		int e = ipc_send(c->fd, q->type, 0, q->data, q->len, -1);
		if (e == -EAGAIN) {
			ev_mod(c->m->loop, c->fd, EPOLLIN | EPOLLOUT);
			return;
		}
		c->outq = q->next;
		free(q);
		if (e < 0) {
			/* rtspctl went away: nothing more to tell it. */
			while (c->outq) {
				q = c->outq;
				c->outq = q->next;
				free(q);
			}
			break;
		}
	}
	c->outq_tail = NULL;
	ev_mod(c->m->loop, c->fd, EPOLLIN);
	if (c->done)
		ctl_conn_free(c);
}

static void ctl_queue(struct ctl_conn *c, uint16_t type, const void *data, size_t len)
{
	struct ctl_msg *q = malloc(sizeof *q + len);
	if (!q)
		return;
	q->next = NULL;
	q->type = type;
	q->len = len;
	memcpy(q->data, data, len);
	if (c->outq_tail)
		c->outq_tail->next = q;
	else
		c->outq = q;
	c->outq_tail = q;
}

static void ctl_output(struct ctl_conn *c, const char *text, size_t len)
{
	const size_t piece = IPC_MAX_PAYLOAD - 1024;
	for (size_t off = 0; off < len; off += piece)
		ctl_queue(c, IPC_CTL_OUTPUT, text + off, len - off < piece ? len - off : piece);
}

/* Ends the command: stdout text (may be ""), exit code, stderr text. */
static void ctl_finish(struct ctl_conn *c, const char *out, int code, const char *err)
{
	if (out && *out)
		ctl_output(c, out, strlen(out));
	uint8_t buf[sizeof(struct ipc_ctl_done) + 2048];
	struct ipc_ctl_done d = { .exit_code = code };
	memcpy(buf, &d, sizeof d);
	size_t n = 0;
	if (err) {
		n = strlen(err);
		if (n > sizeof buf - sizeof d)
			n = sizeof buf - sizeof d;
		memcpy(buf + sizeof d, err, n);
	}
	ctl_queue(c, IPC_CTL_DONE, buf, sizeof d + n);
	c->done = true;
	c->wait = CTL_WAIT_NONE;
	ctl_flush(c);
}

/* ---------------------------------------------------------------- status */

static const char *proc_state_name(const struct proc *p)
{
	switch (p->state) {
	case PROC_STARTING: return "starting";
	case PROC_READY: return "ready";
	case PROC_DRAINING: return "draining";
	}
	return "?";
}

static const char *source_name(int kind)
{
	return kind == SOURCE_TEST ? "test" : kind == SOURCE_FILE ? "file" : "?";
}

struct stream_row {
	const char *path;
	const char *source;
	pid_t pid;
	const char *state;
	int64_t uptime_s;
	int restarts;
	uint32_t viewers;
	uint64_t bitrate_in, bitrate_out;
};

static const char *proc_key(const struct master *m, pid_t pid)
{
	for (const struct proc *p = m->procs; p; p = p->next)
		if (p->pid == pid)
			return p->wc.stream_key;
	return "-";
}

struct stream_rows {
	struct stream_row *rows;
	size_t n, cap;
};

static struct stream_row *row_push(struct stream_rows *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct stream_row *nr = realloc(r->rows, cap * sizeof *nr);
		if (!nr)
			return NULL;
		r->rows = nr;
		r->cap = cap;
	}
	return &r->rows[r->n++];
}

/* One row per stream record (with its current worker, or none), then one
 * per draining worker that no longer is a stream's current one. */
static struct stream_rows status_rows(struct master *m)
{
	struct stream_rows r = { 0 };
	struct stream_row *row;
	int64_t now = ev_now_us();
	for (struct stream_rec *s = m->streams; s && (row = row_push(&r)); s = s->next) {
		struct proc *p = s->current;
		*row = (struct stream_row){
			.path = s->route.key, .source = source_name(s->route.kind), .pid = p ? p->pid : 0,
			.state = p ? proc_state_name(p) : now < s->backoff_until_us ? "backoff" : "stopped",
			.uptime_s = p ? (now - p->started_us) / 1000000 : 0, .restarts = s->restarts,
			.viewers = p ? p->status.sessions : 0, .bitrate_in = p ? p->bitrate_in : 0,
			.bitrate_out = p ? p->bitrate_out : 0,
		};
	}
	for (struct proc *p = m->procs; p; p = p->next) {
		if (p->stream)
			continue;
		if (!(row = row_push(&r)))
			break;
		*row = (struct stream_row){
			.path = p->wc.stream_key, .source = source_name((int)p->wc.source_kind), .pid = p->pid,
			.state = "draining", .uptime_s = (now - p->started_us) / 1000000,
			.viewers = p->status.sessions, .bitrate_in = p->bitrate_in, .bitrate_out = p->bitrate_out,
		};
	}
	return r;
}

static const char *session_state_name(uint32_t st)
{
	return st == 2 ? "playing" : st == 1 ? "ready" : "init";
}

static void fmt_duration(char *buf, size_t len, int64_t s)
{
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

static void fmt_rate(char *buf, size_t len, uint64_t bps)
{
	if (bps >= 10000000)
		snprintf(buf, len, "%.0f Mb/s", (double)bps / 1e6);
	else if (bps >= 1000000)
		snprintf(buf, len, "%.1f Mb/s", (double)bps / 1e6);
	else
		snprintf(buf, len, "%.0f kb/s", (double)bps / 1e3);
}

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
	if (b >= 1ULL << 30)
		snprintf(buf, len, "%.1f GiB", (double)b / (1 << 30));
	else if (b >= 1ULL << 20)
		snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
	else if (b >= 1024)
		snprintf(buf, len, "%.1f KiB", (double)b / 1024);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)b);
}

static void status_render(struct ctl_conn *c, struct strbuf *sb)
{
	struct master *m = c->m;
	struct stream_rows sr = status_rows(m);
	struct stream_row *rows = sr.rows;
	size_t nrows = sr.n;
	int64_t now = ev_now_us();
	if (c->json) {
		strbuf_printf(sb, "{\"server\": {\"version\": ");
		strbuf_json_str(sb, RTSPD_VERSION);
		strbuf_printf(sb, ", \"pid\": %d, \"uptime_s\": %lld, \"config\": ", (int)getpid(),
			      (long long)((now - m->started_us) / 1000000));
		strbuf_json_str(sb, m->config_path);
		strbuf_printf(sb, ", \"rtsp_port\": %d},\n \"streams\": [", m->cfg.rtsp_port);
		for (size_t i = 0; i < nrows; i++) {
			const struct stream_row *r = &rows[i];
			strbuf_printf(sb, "%s\n  {\"path\": ", i ? "," : "");
			strbuf_json_str(sb, r->path);
			strbuf_printf(sb, ", \"source\": \"%s\", \"pid\": %d, \"state\": \"%s\", \"uptime_s\": %lld, "
				      "\"restarts\": %d, \"viewers\": %u, \"bitrate_in\": %llu, \"bitrate_out\": %llu}",
				      r->source, (int)r->pid, r->state, (long long)r->uptime_s, r->restarts, r->viewers,
				      (unsigned long long)r->bitrate_in, (unsigned long long)r->bitrate_out);
		}
		strbuf_printf(sb, "%s],\n \"sessions\": [", nrows ? "\n " : "");
		for (size_t i = 0; i < c->nsessions; i++) {
			const struct ctl_session *s = &c->sessions[i];
			strbuf_printf(sb, "%s\n  {\"id\": ", i ? "," : "");
			strbuf_json_str(sb, s->info.id);
			strbuf_printf(sb, ", \"client\": ");
			strbuf_json_str(sb, s->info.client);
			strbuf_printf(sb, ", \"transport\": ");
			strbuf_json_str(sb, s->info.transport);
			strbuf_printf(sb, ", \"stream\": ");
			strbuf_json_str(sb, proc_key(m, s->pid));
			strbuf_printf(sb, ", \"pid\": %d, \"state\": \"%s\", \"bytes\": %llu, \"bitrate\": %llu, "
				      "\"age_s\": %u, \"skips\": %llu}",
				      (int)s->pid, session_state_name(s->info.state), (unsigned long long)s->info.bytes,
				      (unsigned long long)s->info.bitrate, s->info.age_s,
				      (unsigned long long)s->info.skips);
		}
		strbuf_printf(sb, "%s],\n \"talkers\": [", c->nsessions ? "\n " : "");
		for (const struct talk_proc *t = m->talks; t; t = t->next) {
			strbuf_printf(sb, "%s\n  {\"device\": ", t == m->talks ? "" : ",");
			strbuf_json_str(sb, t->info.device);
			strbuf_printf(sb, ", \"stream\": ");
			strbuf_json_str(sb, t->info.stream);
			strbuf_printf(sb, ", \"client\": ");
			strbuf_json_str(sb, t->info.client);
			strbuf_printf(sb, ", \"session\": ");
			strbuf_json_str(sb, t->info.session);
			strbuf_printf(sb, ", \"codec\": ");
			strbuf_json_str(sb, t->status.codec);
			strbuf_printf(sb, ", \"pid\": %d, \"age_s\": %lld, \"packets\": %llu, \"lost\": %llu, "
				      "\"late\": %llu, \"duplicates\": %llu, \"malformed\": %llu, \"latency_avg_ms\": %u, "
				      "\"latency_max_ms\": %u}",
				      (int)t->pid, (long long)((now - t->started_us) / 1000000),
				      (unsigned long long)t->status.packets, (unsigned long long)t->status.lost,
				      (unsigned long long)t->status.late, (unsigned long long)t->status.duplicates,
				      (unsigned long long)t->status.malformed, t->status.latency_avg_ms,
				      t->status.latency_max_ms);
		}
		strbuf_printf(sb, "%s],\n \"unanswered_workers\": [", m->talks ? "\n " : "");
		for (int i = 0; i < c->nawaiting; i++)
			strbuf_printf(sb, "%s%d", i ? ", " : "", (int)c->awaiting[i]);
		strbuf_printf(sb, "]}\n");
		free(rows);
		return;
	}
	char up[32];
	fmt_duration(up, sizeof up, (now - m->started_us) / 1000000);
	strbuf_printf(sb, "rtspd %s, pid %d, up %s, RTSP port %d, %zu stream%s, %zu session%s\n\n", RTSPD_VERSION,
		      (int)getpid(), up, m->cfg.rtsp_port, nrows, nrows == 1 ? "" : "s", c->nsessions,
		      c->nsessions == 1 ? "" : "s");
	int w = 6;
	for (size_t i = 0; i < nrows; i++)
		if ((int)strlen(rows[i].path) > w)
			w = (int)strlen(rows[i].path) > 48 ? 48 : (int)strlen(rows[i].path);
	strbuf_printf(sb, "%-*s  %-6s  %-7s  %-8s  %-7s  %8s  %7s  %10s  %10s\n", w, "STREAM", "SOURCE", "PID", "STATE",
		      "UPTIME", "RESTARTS", "VIEWERS", "IN", "OUT");
	for (size_t i = 0; i < nrows; i++) {
		const struct stream_row *r = &rows[i];
		char pid[16], rin[24], rout[24];
		snprintf(pid, sizeof pid, r->pid ? "%d" : "-", (int)r->pid);
		fmt_duration(up, sizeof up, r->uptime_s);
		fmt_rate(rin, sizeof rin, r->bitrate_in);
		fmt_rate(rout, sizeof rout, r->bitrate_out);
		strbuf_printf(sb, "%-*s  %-6s  %-7s  %-8s  %-7s  %8d  %7u  %10s  %10s\n", w, r->path, r->source, pid,
			      r->state, r->pid ? up : "-", r->restarts, r->viewers, rin, rout);
	}
	strbuf_printf(sb, "\n%-16s  %-22s  %-9s  %-*s  %-7s  %10s  %10s  %7s\n", "SESSION", "CLIENT", "TRANSPORT", w,
		      "STREAM", "STATE", "BYTES", "RATE", "AGE");
	for (size_t i = 0; i < c->nsessions; i++) {
		const struct ctl_session *s = &c->sessions[i];
		char bytes[24], rate[24];
		fmt_bytes(bytes, sizeof bytes, s->info.bytes);
		fmt_rate(rate, sizeof rate, s->info.bitrate);
		fmt_duration(up, sizeof up, s->info.age_s);
		strbuf_printf(sb, "%-16s  %-22s  %-9s  %-*s  %-7s  %10s  %10s  %7s\n", s->info.id, s->info.client,
			      s->info.transport, w, proc_key(m, s->pid), session_state_name(s->info.state), bytes, rate,
			      up);
	}
	if (m->talks)
		strbuf_printf(sb, "\n%-12s  %-22s  %-16s  %-14s  %8s  %6s  %11s\n", "TALK DEVICE", "CLIENT", "SESSION",
			      "CODEC", "PACKETS", "LOST", "LATENCY");
	for (const struct talk_proc *t = m->talks; t; t = t->next) {
		char lat[32];
		snprintf(lat, sizeof lat, "%u/%u ms", t->status.latency_avg_ms, t->status.latency_max_ms);
		strbuf_printf(sb, "%-12s  %-22s  %-16s  %-14s  %8llu  %6llu  %11s\n", t->info.device, t->info.client,
			      t->info.session, t->status.codec[0] ? t->status.codec : "-",
			      (unsigned long long)t->status.packets, (unsigned long long)t->status.lost, lat);
	}
	for (int i = 0; i < c->nawaiting; i++)
		strbuf_printf(sb, "(worker pid %d did not answer in time: its sessions are missing)\n",
			      (int)c->awaiting[i]);
	free(rows);
}

static void ctl_query_done(struct ctl_conn *c)
{
	if (c->wait == CTL_WAIT_SESSIONS) {
		struct strbuf sb = { 0 };
		status_render(c, &sb);
		if (sb.failed)
			ctl_finish(c, NULL, 1, "out of memory");
		else
			ctl_finish(c, strbuf_str(&sb), 0, NULL);
		strbuf_free(&sb);
	} else if (c->wait == CTL_WAIT_KICK) {
		char msg[128];
		if (c->kicked) {
			snprintf(msg, sizeof msg, "session %s ended\n", c->kick_id);
			ctl_finish(c, msg, 0, NULL);
		} else {
			snprintf(msg, sizeof msg, "no session %s", c->kick_id);
			ctl_finish(c, NULL, 1, msg);
		}
	}
}

/* Sends one query to every live worker; answers at once when there is none. */
static void ctl_query_workers(struct ctl_conn *c, enum ctl_wait what, uint16_t type, const void *payload,
			      size_t len)
{
	struct master *m = c->m;
	c->wait = what;
	c->query = ++m->next_query;
	if (!c->query)
		c->query = ++m->next_query;
	int n = 0;
	for (struct proc *p = m->procs; p; p = p->next)
		n++;
	c->awaiting = n ? calloc((size_t)n, sizeof *c->awaiting) : NULL;
	c->nawaiting = 0;
	for (struct proc *p = m->procs; c->awaiting && p; p = p->next)
		if (ipc_send(p->ipc_fd, type, c->query, payload, len, -1) == 0)
			c->awaiting[c->nawaiting++] = p->pid;
	c->deadline_us = ev_now_us() + CTL_QUERY_TIMEOUT_US;
	if (!c->nawaiting)
		ctl_query_done(c);
}

static bool ctl_unawait(struct ctl_conn *c, pid_t pid)
{
	for (int i = 0; i < c->nawaiting; i++)
		if (c->awaiting[i] == pid) {
			c->awaiting[i] = c->awaiting[--c->nawaiting];
			return true;
		}
	return false;
}

void control_worker_reply(struct master *m, struct proc *p, const struct ipc_hdr *hdr, const void *payload,
			  size_t len)
{
	struct ctl_conn *c = m->ctl_conns;
	while (c && !(c->wait != CTL_WAIT_NONE && c->query == hdr->peer))
		c = c->next;
	if (!c)
		return;  /* too late: that rtspctl got its answer already */
	if (hdr->type == IPC_SESSIONS && c->wait == CTL_WAIT_SESSIONS) {
		struct ipc_sessions sh;
		if (len < sizeof sh)
			return;
		memcpy(&sh, payload, sizeof sh);
		if (sh.count > IPC_SESSIONS_PER_MSG || len != sizeof sh + sh.count * sizeof(struct ipc_session_info)) {
			log_warn("worker pid %d: malformed IPC SESSIONS ignored", (int)p->pid);
			return;
		}
		const struct ipc_session_info *info = (const void *)((const uint8_t *)payload + sizeof sh);
		for (uint32_t i = 0; i < sh.count; i++) {
			if (c->nsessions == c->cap) {
				size_t cap = c->cap ? c->cap * 2 : 64;
				struct ctl_session *ns = realloc(c->sessions, cap * sizeof *ns);
				if (!ns)
					break;
				c->sessions = ns;
				c->cap = cap;
			}
			struct ctl_session *s = &c->sessions[c->nsessions++];
			s->info = info[i];
			s->info.id[sizeof s->info.id - 1] = 0;
			s->info.client[sizeof s->info.client - 1] = 0;
			s->info.transport[sizeof s->info.transport - 1] = 0;
			s->pid = p->pid;
		}
		if (!sh.more && ctl_unawait(c, p->pid) && !c->nawaiting)
			ctl_query_done(c);
	} else if (hdr->type == IPC_KICK_RESULT && c->wait == CTL_WAIT_KICK) {
		int32_t r;
		if (len != sizeof r)
			return;
		memcpy(&r, payload, sizeof r);
		if (r == 0)
			c->kicked = true;
		if (ctl_unawait(c, p->pid) && !c->nawaiting)
			ctl_query_done(c);
	}
}

void control_worker_gone(struct master *m, pid_t pid)
{
	for (struct ctl_conn *c = m->ctl_conns, *next; c; c = next) {
		next = c->next;
		if (c->wait != CTL_WAIT_NONE && ctl_unawait(c, pid) && !c->nawaiting)
			ctl_query_done(c);
	}
}

/* ---------------------------------------------------------------- commands */

typedef void (*ctl_handler)(struct ctl_conn *c, const char *const *args, int nargs);

static void cmd_status(struct ctl_conn *c, const char *const *args, int nargs)
{
	if (nargs == 1 && strcmp(args[0], "--json")) {
		ctl_finish(c, NULL, 2, "usage: status [--json]");
		return;
	}
	c->json = nargs == 1;
	ctl_query_workers(c, CTL_WAIT_SESSIONS, IPC_SESSIONS_QUERY, NULL, 0);
}

static void cmd_reload(struct ctl_conn *c, const char *const *args, int nargs)
{
	(void)args;
	(void)nargs;
	struct strbuf report = { 0 };
	int r = master_reload(c->m, &report);
	if (r < 0)
		ctl_finish(c, NULL, 1, strbuf_str(&report));
	else
		ctl_finish(c, strbuf_str(&report), 0, NULL);
	strbuf_free(&report);
}

static void cmd_kick(struct ctl_conn *c, const char *const *args, int nargs)
{
	(void)nargs;
	snprintf(c->kick_id, sizeof c->kick_id, "%s", args[0]);
	log_info("rtspctl (uid %d): kick %s", (int)c->uid, c->kick_id);
	ctl_query_workers(c, CTL_WAIT_KICK, IPC_KICK, c->kick_id, strlen(c->kick_id));
}

static void cmd_restart(struct ctl_conn *c, const char *const *args, int nargs)
{
	(void)nargs;
	char msg[1400];
	int r = supervisor_restart(c->m, args[0], msg, sizeof msg);
	log_msg(r < 0 ? LOG_INFO : LOG_WARN, args[0], NULL, "rtspctl (uid %d): restart: %s", (int)c->uid, msg);
	if (r < 0) {
		ctl_finish(c, NULL, 1, msg);
		return;
	}
	strncat(msg, "\n", sizeof msg - strlen(msg) - 1);
	ctl_finish(c, msg, 0, NULL);
}

static void cmd_stop(struct ctl_conn *c, const char *const *args, int nargs)
{
	(void)args;
	(void)nargs;
	log_warn("rtspctl (uid %d): stop", (int)c->uid);
	c->stop_after = true;
	ctl_finish(c, "stopping\n", 0, NULL);
}

static void cmd_help(struct ctl_conn *c, const char *const *args, int nargs)
{
	(void)args;
	(void)nargs;
	char buf[2048];
	if (ctl_format_help(buf, sizeof buf) < 0)
		buf[0] = 0;
	ctl_finish(c, buf, 0, NULL);
}

static const ctl_handler handlers[CTL_CMD_MAX] = {
	[CTL_STATUS] = cmd_status,
	[CTL_RELOAD] = cmd_reload,
	[CTL_KICK] = cmd_kick,
	[CTL_RESTART] = cmd_restart,
	[CTL_STOP] = cmd_stop,
	[CTL_HELP] = cmd_help,
};

static void ctl_on_request(struct ctl_conn *c, const struct ipc_hdr *hdr, const char *payload, size_t len)
{
	if (hdr->type != IPC_CTL_REQUEST) {
		ctl_finish(c, NULL, 2, "expected a command");
		return;
	}
	const char *words[CTL_MAX_WORDS];
	int n = ctl_parse_request(payload, len, words);
	if (n < 0) {
		log_warn("control socket: malformed request from pid %d", (int)c->peer_pid);
		ctl_finish(c, NULL, 2, "malformed request");
		return;
	}
	char err[256];
	const struct ctl_command *cmd = ctl_find(words, n, err, sizeof err);
	if (!cmd) {
		ctl_finish(c, NULL, 2, err);
		return;
	}
	log_debug("rtspctl (uid %d, pid %d): %s", (int)c->uid, (int)c->peer_pid, cmd->name);
	handlers[cmd->id](c, words + 1, n - 1);
}

static void ctl_on_io(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct ctl_conn *c = arg;
	(void)loop;
	if (events & EPOLLOUT) {
		ctl_flush(c);
		return;  /* c may be gone */
	}
	if (c->done || c->wait != CTL_WAIT_NONE) {
		/* One command per connection: anything more is ignored; a hang-up
		 * while a query runs ends the connection. */
		char sink[256];
		ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->done = true;
			c->stop_after = false;
			ctl_conn_free(c);
		}
		return;
	}
	static char buf[CTL_MAX_REQUEST + 1];
	struct ipc_hdr hdr;
	int rfd = -1;
	ssize_t n = ipc_recv(fd, &hdr, buf, CTL_MAX_REQUEST, &rfd);
	if (rfd >= 0)
		close(rfd);
	if (n == -EAGAIN)
		return;
	if (n == -EPROTO) {
		char msg[160];
		if (hdr.version != IPC_VERSION)
			snprintf(msg, sizeof msg, "protocol version %u, this server speaks %d: use the rtspctl of the same release",
				 hdr.version, IPC_VERSION);
		else
			snprintf(msg, sizeof msg, "malformed request");
		log_warn("control socket: %s (pid %d)", msg, (int)c->peer_pid);
		ctl_finish(c, NULL, 2, msg);
		return;
	}
	if (n < 0) {
		ctl_conn_free(c);
		return;
	}
	if (c->denied) {
		log_warn("control socket: uid %d (pid %d) is not allowed", (int)c->uid, (int)c->peer_pid);
		ctl_finish(c, NULL, 4, "permission denied: root, the server's user or its group only");
		return;
	}
	ctl_on_request(c, &hdr, buf, (size_t)n);
}

/* Root, our own user, or a member of our group (primary or supplementary,
 * from /proc since SO_PEERCRED only carries the primary one). */
static bool ctl_peer_allowed(const struct ucred *cr)
{
	if (cr->uid == 0 || cr->uid == geteuid() || cr->gid == getegid())
		return true;
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/status", (int)cr->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = false;
	while (!ok && fgets(line, sizeof line, f)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		char *p = line + 7, *end;
		for (;;) {
			long g = strtol(p, &end, 10);
			if (end == p)
				break;
			if ((gid_t)g == getegid())
				ok = true;
			p = end;
		}
	}
	fclose(f);
	return ok;
}

static void ctl_on_accept(struct ev_loop *loop, int lfd, uint32_t events, void *arg)
{
	struct master *m = arg;
	(void)events;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ucred cr = { 0 };
		socklen_t cl = sizeof cr;
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl);
		int nconns = 0;
		for (struct ctl_conn *c = m->ctl_conns; c; c = c->next)
			nconns++;
		struct ctl_conn *c = nconns < CTL_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		int sz = 1 << 20;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		c->m = m;
		c->fd = fd;
		c->uid = cr.uid;
		c->peer_pid = cr.pid;
		c->deadline_us = ev_now_us() + CTL_IDLE_TIMEOUT_US;
		c->next = m->ctl_conns;
		if (m->ctl_conns)
			m->ctl_conns->prev = c;
		m->ctl_conns = c;
		if (ev_add(loop, fd, EPOLLIN, ctl_on_io, c) < 0) {
			ctl_conn_free(c);
			continue;
		}
		/* A refusal waits for the request: closing a SEQPACKET socket
		 * with unread messages resets it, and the client would see the
		 * reset instead of our answer. */
		c->denied = !ctl_peer_allowed(&cr);
	}
}

void control_tick(struct master *m)
{
	int64_t now = ev_now_us();
	for (struct ctl_conn *c = m->ctl_conns, *next; c; c = next) {
		next = c->next;
		if (now < c->deadline_us || c->done)
			continue;
		if (c->wait != CTL_WAIT_NONE)
			ctl_query_done(c);   /* answer with what arrived */
		else
			ctl_conn_free(c);    /* connected, never asked anything */
	}
}

int control_open(struct master *m, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path[0]) {
		snprintf(err, errlen, "no <control_socket> path");
		return -EINVAL;
	}
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "%s: path too long for a socket", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A socket file left behind by a server that died is replaced; one a
	 * running server answers on is not. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
			close(probe);
			snprintf(err, errlen, "%s: another server is answering on it", path);
			return -EADDRINUSE;
		}
		close(probe);
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	mode_t old = umask(0117);   /* 0660: our user and group */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	chmod(path, 0660);
	if (ev_add(m->loop, fd, EPOLLIN, ctl_on_accept, m) < 0) {
		close(fd);
		unlink(path);
		snprintf(err, errlen, "event loop full");
		return -ENOSPC;
	}
	control_close(m);
	m->ctl_fd = fd;
	snprintf(m->ctl_path, sizeof m->ctl_path, "%s", path);
	return 0;
}

void control_close(struct master *m)
{
	if (m->ctl_fd < 0)
		return;
	ev_del(m->loop, m->ctl_fd);
	close(m->ctl_fd);
	unlink(m->ctl_path);
	m->ctl_fd = -1;
	m->ctl_path[0] = 0;
}

void control_free_all(struct master *m)
{
	while (m->ctl_conns) {
		m->ctl_conns->stop_after = false;
		ctl_conn_free(m->ctl_conns);
	}
}
