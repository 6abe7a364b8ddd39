/* master.h — the master process: listeners, first-request routing, fd
 * hand-off to workers, worker supervision. It never touches media. */
#ifndef RTSPD_MASTER_H
#define RTSPD_MASTER_H

#include "master/master-t.h"

struct strbuf;

/* Opens the listeners (fatal on failure: start-up only). */
void master_listen(struct master *m);
/* Runs the master until SIGTERM/SIGINT; returns the exit code. */
int master_run(struct master *m);
/* Graceful stop: listeners closed, workers told to end their sessions (RTCP
 * BYE), killed if they are not gone within 4 s. */
void master_stop(struct master *m);
/* Listeners for cfg: those m already has on the same address are reused,
 * the others opened. On failure nothing of m's changes and err says why.
 * commit() closes m's listeners that are no longer wanted and installs
 * the new set; abort() closes what prepare() opened. */
int master_listeners_prepare(struct master *m, const struct rtspd_config *cfg, struct listener *out, int *nout,
			     char *err, size_t errlen);
void master_listeners_commit(struct master *m, const struct listener *out, int n);
void master_listeners_abort(struct master *m, struct listener *out, int n);
/* Maps a path relative to media_root onto a readable regular file inside
 * it (symlinks followed). 0 and the absolute path, -ENOENT or -EACCES. */
int master_resolve_file(const char *media_root, const char *rel, char *out, size_t outlen);
/* The configuration at path (NULL or "": the built-in defaults, port 8554). */
int master_load_config(const char *path, struct rtspd_config *cfg, char *err, size_t errlen);

/* reload.c */
/* Re-reads the configuration file and applies the difference: listeners,
 * log level, the control socket, and each running stream whose worker
 * configuration changed (restarted) or whose file is gone (ended). A bad
 * configuration changes nothing. Returns 0 or -errno; report gets what
 * changed, or why it was refused. */
int master_reload(struct master *m, struct strbuf *report);
/* Logs (and adds to report, if not NULL) every configured feature this
 * build does not implement yet; returns how many. At start-up and reload. */
int master_warn_unsupported(const struct rtspd_config *cfg, struct strbuf *report);

/* control.c: the control socket for rtspctl */
int control_open(struct master *m, const char *path, char *err, size_t errlen);
void control_close(struct master *m);
void control_free_all(struct master *m);
void control_tick(struct master *m);
void control_worker_reply(struct master *m, struct proc *p, const struct ipc_hdr *hdr, const void *payload,
			  size_t len);
void control_worker_gone(struct master *m, pid_t pid);

/* service.c: systemd notification */
void service_init(struct master *m);
void service_ready(struct master *m);
void service_status(struct master *m);
void service_status_text(struct master *m, char *buf, size_t len);
void service_reloading(struct master *m);
void service_stopping(struct master *m);

/* supervisor.c */
/* Hands a client connection (its fd and the bytes already read) to the
 * stream's worker, starting one if needed. Takes ownership of fd. */
void supervisor_dispatch(struct master *m, const struct route *r, const char *file_path, int fd, uint32_t conn_id,
			 const char *peer, const uint8_t *bytes, size_t len, uint32_t flags, const uint8_t *raw,
			 size_t raw_len);
void supervisor_reap(struct master *m);             /* SIGCHLD */
void supervisor_tick(struct master *m);             /* once a second: idle workers */
void supervisor_stop_all(struct master *m);         /* SIGTERM */
bool supervisor_all_gone(const struct master *m);
void supervisor_kill_all(struct master *m);
/* What a worker of stream s is started with under cfg. */
void supervisor_worker_config(const struct rtspd_config *cfg, const struct stream_rec *s,
			      struct ipc_worker_config *wc);
/* Stops a stream's worker (BYE to its viewers) and starts a new one at once. */
int supervisor_restart(struct master *m, const char *key, char *msg, size_t msglen);
/* Stops one worker: graceful (drain) or now (BYE, close). It is no longer
 * its stream's current worker. */
void supervisor_stop_proc(struct proc *p, bool graceful);
/* Starts a worker for s (no connection yet); NULL on failure. */
struct proc *supervisor_spawn(struct master *m, struct stream_rec *s);
/* Tells every worker the log level. */
void supervisor_broadcast_log_level(struct master *m, int level);

/* Writes a minimal RTSP answer to a connection the master is about to close
 * (inside a WebSocket binary frame when ws). */
void master_reply(int fd, bool ws, int status, int cseq, const char *extra);

#endif
