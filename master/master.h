/* master.h — the master process: listeners, first-request routing, fd
 * hand-off to workers, worker supervision. It never touches media. */
#ifndef RTSPD_MASTER_H
#define RTSPD_MASTER_H

#include "master/master-t.h"

/* Opens the listeners (fatal on failure: start-up only). */
void master_listen(struct master *m);
/* Runs the master until SIGTERM/SIGINT; returns the exit code. */
int master_run(struct master *m);

/* supervisor.c */
/* Hands a client connection (its fd and the bytes already read) to the
 * stream's worker, starting one if needed. Takes ownership of fd. */
void supervisor_dispatch(struct master *m, const struct route *r, const char *file_path,
			 int fd, uint32_t conn_id, const char *peer, const uint8_t *bytes, size_t len);
void supervisor_reap(struct master *m);             /* SIGCHLD */
void supervisor_tick(struct master *m);             /* once a second: idle workers */
void supervisor_stop_all(struct master *m);         /* SIGTERM */
bool supervisor_all_gone(const struct master *m);
void supervisor_kill_all(struct master *m);

/* Writes a minimal RTSP answer to a connection the master is about to close. */
void master_reply(int fd, int status, int cseq, const char *extra);

#endif
