/* reload.c — applying a new configuration to a running server (SIGHUP,
 * rtspctl reload).
 *
 * Everything that can fail is done before anything changes: the file is
 * parsed and checked completely, media_dir must exist, new listeners are
 * opened next to the old ones (a listener on an unchanged address is kept
 * as it is), and a moved control socket is bound. Only then is the new
 * configuration committed: listeners no longer wanted are closed (the
 * connections they accepted live in workers and are not touched), the log
 * level goes to every process at once, and each running stream's worker
 * configuration is recomputed: identical → the worker and its viewers carry
 * on untouched; different → the worker is stopped (RTCP BYE to its viewers)
 * and a new one starts; its file gone from media_dir → the worker is
 * stopped the same way. A refused reload leaves the running server exactly
 * as it was.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "master/master.h"

enum field_type { F_INT, F_BOOL, F_STR };

#define FIELD(name, type) { #name, offsetof(struct rtspd_config, name), type }
static const struct {
	const char *name;
	size_t off;
	enum field_type type;
} fields[] = {
	FIELD(serverip, F_STR), FIELD(rtsp_port, F_INT), FIELD(rtsps_enable, F_BOOL), FIELD(rtsps_port, F_INT),
	FIELD(rtsps_cert, F_STR), FIELD(rtsps_key, F_STR), FIELD(loop_nums, F_INT), FIELD(multicast, F_BOOL),
	FIELD(udp_base_port, F_INT), FIELD(metadata, F_BOOL), FIELD(rtsp_over_http, F_BOOL),
	FIELD(http_port, F_INT), FIELD(rtsp_over_https, F_BOOL), FIELD(https_port, F_INT),
	FIELD(https_cert, F_STR), FIELD(https_key, F_STR), FIELD(ipv6_enable, F_BOOL), FIELD(need_auth, F_BOOL),
	FIELD(log_enable, F_BOOL), FIELD(log_level, F_INT), FIELD(media_dir, F_STR), FIELD(file_mode, F_INT),
	FIELD(control_socket, F_STR), FIELD(session_timeout, F_INT), FIELD(worker_idle_timeout, F_INT),
	FIELD(max_sessions, F_INT), FIELD(slow_viewer_timeout, F_INT), FIELD(ring_size_kb, F_INT),
	FIELD(multicast_group_base, F_STR), FIELD(multicast_port_base, F_INT), FIELD(multicast_ttl, F_INT),
	FIELD(srtp_over_plain_rtsp, F_BOOL),
};

static void field_text(const struct rtspd_config *c, int i, char *buf, size_t len)
{
	const char *p = (const char *)c + fields[i].off;
	switch (fields[i].type) {
	case F_INT: {
		int v;
		memcpy(&v, p, sizeof v);
		snprintf(buf, len, "%d", v);
		break;
	}
	case F_BOOL:
		snprintf(buf, len, "%d", *(const bool *)p ? 1 : 0);
		break;
	case F_STR:
		snprintf(buf, len, "\"%s\"", p);
		break;
	}
}

/* One line per setting that differs; returns how many. */
static int diff_settings(const struct rtspd_config *a, const struct rtspd_config *b, struct strbuf *rep)
{
	int n = 0;
	for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++) {
		char va[CFG_PATH + 8], vb[CFG_PATH + 8];
		field_text(a, i, va, sizeof va);
		field_text(b, i, vb, sizeof vb);
		if (strcmp(va, vb)) {
			strbuf_printf(rep, "  <%s>: %s -> %s\n", fields[i].name, va, vb);
			n++;
		}
	}
#define LIST_DIFF(arr, cnt, node)                                                                         \
	if (a->cnt != b->cnt || (a->cnt && memcmp(a->arr, b->arr, sizeof *a->arr * (size_t)a->cnt))) {   \
		strbuf_printf(rep, "  <%s> entries: %d -> %d, changed\n", node, a->cnt, b->cnt);             \
		n++;                                                                                      \
	}
	LIST_DIFF(users, nusers, "user")
	LIST_DIFF(outputs, noutputs, "output")
	LIST_DIFF(proxies, nproxies, "proxy")
	LIST_DIFF(pushers, npushers, "pusher")
#undef LIST_DIFF
	if (memcmp(&a->http_notify, &b->http_notify, sizeof a->http_notify)) {
		strbuf_printf(rep, "  <http_notify>: changed\n");
		n++;
	}
	if (memcmp(&a->backchannel, &b->backchannel, sizeof a->backchannel)) {
		strbuf_printf(rep, "  <backchannel>: changed\n");
		n++;
	}
	return n;
}

/* Worker configurations equal but for what reaches workers live (log level). */
static bool worker_config_same(const struct ipc_worker_config *a, const struct ipc_worker_config *b)
{
	struct ipc_worker_config x = *a, y = *b;
	x.log_level = y.log_level = 0;
	x.log_enable = y.log_enable = 0;
	return !memcmp(&x, &y, sizeof x);
}

static void emit_unsupported(const char *feature, void *arg)
{
	struct strbuf *rep = arg;
	log_warn("<%s> is configured but not supported yet: ignored", feature);
	if (rep)
		strbuf_printf(rep, "  note: <%s> is configured but not supported yet: ignored\n", feature);
}

int master_warn_unsupported(const struct rtspd_config *cfg, struct strbuf *report)
{
	return config_unsupported(cfg, emit_unsupported, report);
}

static int effective_level(const struct rtspd_config *c)
{
	return c->log_enable ? c->log_level : LOG_FATAL;
}

/* Streams whose worker must go: restarted (configuration changed) or ended
 * (file gone). */
static void apply_streams(struct master *m, struct strbuf *rep, int *restarted, int *ended, int *kept)
{
	for (struct stream_rec *s = m->streams; s; s = s->next) {
		struct proc *p = s->current;
		char file[CFG_PATH] = "";
		int e = 0;
		if (s->route.kind == SOURCE_FILE)
			e = master_resolve_file(m->media_root, s->route.path, file, sizeof file);
		if (e < 0) {
			if (p) {
				strbuf_printf(rep, "  stream %s: its file is no longer in media_dir: worker pid %d stopped "
					      "(its viewers got BYE)\n", s->route.key, (int)p->pid);
				log_tagged(LOG_WARN, &(struct log_tags){ .stream = s->route.key, .worker_pid = p->pid },
					   "reload: the file is no longer in media_dir: stopping the worker");
				supervisor_stop_proc(p, false);
				(*ended)++;
			}
			continue;
		}
		snprintf(s->file_path, sizeof s->file_path, "%s", file);
		if (!p)
			continue;
		struct ipc_worker_config wc;
		supervisor_worker_config(&m->cfg, s, &wc);
		if (worker_config_same(&wc, &p->wc)) {
			(*kept)++;
			continue;
		}
		pid_t old = p->pid;
		log_tagged(LOG_WARN, &(struct log_tags){ .stream = s->route.key, .worker_pid = old },
			   "reload: the stream's configuration changed: restarting its worker");
		supervisor_stop_proc(p, false);
		struct proc *np = supervisor_spawn(m, s);
		strbuf_printf(rep, "  stream %s: configuration changed: worker pid %d stopped (its viewers got BYE)",
			      s->route.key, (int)old);
		if (np)
			strbuf_printf(rep, ", new worker pid %d\n", (int)np->pid);
		else
			strbuf_printf(rep, "; a new worker starts with the next viewer\n");
		(*restarted)++;
	}
}

int master_reload(struct master *m, struct strbuf *rep)
{
	service_reloading(m);
	const char *path = m->config_path[0] ? m->config_path : NULL;
	struct rtspd_config nc;
	char err[1600] = "";
	int r = master_load_config(path, &nc, err, sizeof err);
	char root[CFG_PATH];
	struct listener nl[MAX_LISTENERS];
	int nn = 0;
	bool listeners_prepared = false;
	if (r == 0 && !realpath(nc.media_dir[0] ? nc.media_dir : ".", root)) {
		r = -errno;
		snprintf(err, sizeof err, "<media_dir> %.1024s: %s", nc.media_dir, strerror(errno));
	}
	struct stat st;
	if (r == 0 && (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))) {
		r = -ENOTDIR;
		snprintf(err, sizeof err, "<media_dir> %.1024s is not a directory", nc.media_dir);
	}
	if (r == 0) {
		r = master_listeners_prepare(m, &nc, nl, &nn, err, sizeof err);
		listeners_prepared = r == 0;
	}
	bool ctl_moved = r == 0 && strcmp(nc.control_socket, m->cfg.control_socket);
	if (ctl_moved) {
		char cerr[512];
		r = control_open(m, nc.control_socket, cerr, sizeof cerr);
		if (r < 0)
			snprintf(err, sizeof err, "<control_socket> %s", cerr);
	}
	if (r < 0) {
		if (listeners_prepared)
			master_listeners_abort(m, nl, nn);
		config_free(&nc);
		strbuf_printf(rep, "reload refused: %s\nthe running configuration is unchanged\n", err);
		log_error("reload refused: %s; the running configuration is unchanged", err);
		service_ready(m);
		return r;
	}

	/* Commit. */
	strbuf_printf(rep, "configuration %s reloaded\n", path ? path : "(built-in defaults)");
	int changes = diff_settings(&m->cfg, &nc, rep);
	int old_level = effective_level(&m->cfg), new_level = effective_level(&nc);
	master_listeners_commit(m, nl, nn);
	config_free(&m->cfg);
	m->cfg = nc;
	snprintf(m->media_root, sizeof m->media_root, "%s", root);
	master_warn_unsupported(&m->cfg, rep);
	if (old_level != new_level) {
		log_set_level(new_level);
		supervisor_broadcast_log_level(m, new_level);
	}
	int restarted = 0, ended = 0, kept = 0;
	apply_streams(m, rep, &restarted, &ended, &kept);
	tls_front_reload(m, rep);
	if (!changes)
		strbuf_printf(rep, "  no setting changed\n");
	strbuf_printf(rep, "streams: %d kept running untouched, %d restarted, %d ended\n", kept, restarted, ended);
	log_warn("configuration reloaded: %d setting%s changed; streams: %d kept, %d restarted, %d ended", changes,
		 changes == 1 ? "" : "s", kept, restarted, ended);
	service_ready(m);
	return 0;
}
