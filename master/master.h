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
void supervisor_dispatch(struct master *m, const struct route *r, const char *file_path, int fd,
			 const struct ipc_client *ic, const uint8_t *bytes, size_t len, const uint8_t *raw,
			 size_t raw_len);
/* Forks and execs this binary with argv, its IPC socket on fd 3; returns
 * the pid and the master's end (non-blocking) in *ipc_fd, or -1. */
pid_t supervisor_fork(struct master *m, char *const argv[], int *ipc_fd);
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

/* A new client connection (accepted, or the plain end of a TLS one):
 * the master reads its first request and routes it. Takes fd. */
int master_take_connection(struct master *m, int fd, const struct sockaddr_storage *peer,
			   const struct sockaddr_storage *local, bool tls);

/* tlsfront.c: the master's side of the TLS front process (tls/tls.h) */
/* Checks the certificate and key of every TLS listener cfg enables. */
int tls_front_check_config(const struct rtspd_config *cfg, char *err, size_t errlen);
/* Starts the TLS front if cfg has TLS listeners and none runs (start-up,
 * and after a crash once the back-off allows). */
void tls_front_start(struct master *m);
/* An accepted connection on a TLS listener: to the TLS front. Takes fd. */
void tls_front_hand_off(struct master *m, int fd, int kind, const struct sockaddr_storage *peer,
			const struct sockaddr_storage *local);
/* SIGCHLD: true when pid was a TLS front (then it is accounted for). */
bool tls_front_reaped(struct master *m, pid_t pid, int status);
void tls_front_tick(struct master *m);
void tls_front_stop_all(struct master *m, bool graceful);
void tls_front_kill_all(struct master *m);
void tls_front_log_level(struct master *m, int level);
/* After a reload switched m->cfg: a new TLS front that reads the
 * certificates and keys again (the old one relays its connections until
 * they end), or none when no TLS listener is left. */
void tls_front_reload(struct master *m, struct strbuf *report);

/* talk.c: the back channel's device arbitration and talk processes */
/* A worker asks for the device for one talker (request_id answers it);
 * takes fd, the talker's packet socket. */
void talk_acquire(struct master *m, struct proc *p, uint32_t request_id, const struct ipc_talk *req, int fd);
/* SIGCHLD: true when pid was a talk process (its device is free then). */
bool talk_reaped(struct master *m, pid_t pid, int status);
/* The worker's talker of request_id is gone: its device frees soon. */
void talk_released(struct master *m, struct proc *p, uint32_t request_id);
void talk_stop_all(struct master *m);
void talk_kill_all(struct master *m);
void talk_log_level(struct master *m, int level);

/* Writes a minimal RTSP answer to a connection the master is about to close
 * (inside a WebSocket binary frame when ws). */
void master_reply(int fd, bool ws, int status, int cseq, const char *extra);

#endif
