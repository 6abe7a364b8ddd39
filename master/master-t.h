/* master-t.h — the types of the master process.
 *
 * Ownership:
 *  - struct master owns the listeners, the pending connections (accepted,
 *    first request not complete yet), the stream table and the event loop.
 *  - A pending connection's fd belongs to the master until it is handed to a
 *    worker (sent with SCM_RIGHTS, then closed here) or answered and closed.
 *  - A stream record (one per routing key) outlives its workers: it keeps
 *    the crash history that drives back-off. Its current worker, and any
 *    older ones still draining, are procs owned by the master's proc list.
 */
#ifndef RTSPD_MASTER_T_H
#define RTSPD_MASTER_T_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/config-t.h"
#include "common/ev.h"
#include "common/ipc-t.h"
#include "proto/route.h"

#define FIRST_REQUEST_MAX 8192
#define FIRST_REQUEST_TIMEOUT_US 10000000
#define MAX_LISTENERS 16
#define MAX_PENDING 4096
#define LINGER_US 2000000
#define CRASH_WINDOW_US 60000000
#define CRASH_HISTORY 8

struct pending {
	struct pending *next, *prev;
	struct master *m;
	int fd;
	uint32_t conn_id;
	char peer[64];
	struct sockaddr_storage peer_ss, local_ss; /* the client's TCP addresses */
	bool tls;                    /* came through the TLS front (fd is its plain end) */
	int64_t deadline_us;
	bool lingering;              /* answered: draining input before close */
	bool http;                   /* an HTTP request (tunnel half): answers are HTTP */
	int http_minor;
	bool ws;                     /* a WebSocket: buf holds raw frames, ws_dec their payload */
	bool ws_fragmented;          /* the last data frame was not final */
	bool ws_text;                /* the open message is text */
	uint32_t ws_utf8;            /* its UTF-8 state (ws_utf8_feed) */
	size_t ws_dec_len;
	uint8_t ws_dec[FIRST_REQUEST_MAX];
	size_t len;
	uint8_t buf[FIRST_REQUEST_MAX];
};

enum proc_state { PROC_STARTING, PROC_READY, PROC_DRAINING };

struct stream_rec;

struct proc {
	struct proc *next;
	struct master *m;
	struct stream_rec *stream;   /* NULL once it is no longer the stream's current worker */
	pid_t pid;
	int ipc_fd;
	enum proc_state state;
	bool stop_sent;
	int64_t started_us;
	int64_t idle_since_us;       /* 0 while it has sessions */
	struct ipc_worker_status status;
	struct ipc_worker_config wc; /* what it was started with (reload compares) */
	/* bit rates from the status counters, over about a second */
	uint64_t rate_prev_in, rate_prev_out;
	int64_t rate_prev_us;
	uint64_t bitrate_in, bitrate_out;
};

struct stream_rec {
	struct stream_rec *next;
	struct route route;
	char file_path[CFG_PATH];
	struct proc *current;
	int restarts;                /* crashes so far */
	int64_t crash_us[CRASH_HISTORY];
	int ncrash;
	int64_t backoff_until_us;
	unsigned index;              /* order of creation: picks the multicast group and ports */
};

struct listener {
	int fd;
	int tls_kind;                /* 0: plain; else enum tls_kind: accepted fds go to the TLS front */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

/* A TLS front process (tls/tls.h). One is current; an older one may still
 * relay its connections after a reload changed the certificates. */
struct tls_proc {
	struct tls_proc *next;
	struct master *m;
	pid_t pid;
	int ipc_fd;
	bool stop_sent;
	int64_t started_us;
	struct ipc_tls_config tc;    /* what it was started with (reload compares) */
};

/* A talk process (talk/talk.h): one talker on one ALSA device. */
struct talk_proc {
	struct talk_proc *next;
	struct master *m;
	pid_t pid;
	int ipc_fd;
	pid_t worker_pid;            /* whose session talks; answered when the device is open */
	uint32_t request_id;
	bool answered;               /* the worker got its IPC_TALK_RESULT */
	bool ending;                 /* its talker is gone (IPC_TALK_RELEASE); it plays out and exits */
	int64_t started_us;
	struct ipc_talk info;        /* device, stream, session, client */
	struct ipc_talk_status status;
};

/* A back-channel SETUP for a device whose talker is ending: it waits for
 * the talk process to exit (a client that TEARs DOWN and talks again at
 * once must not get 453) for at most TALK_WAIT_MS. */
struct talk_wait {
	struct talk_wait *next;
	struct master *m;
	pid_t worker_pid;
	uint32_t request_id;
	int fd;                      /* the talker's packet socket; ours until passed on */
	long long timer;
	struct ipc_talk req;
};

struct ctl_conn;

struct master {
	struct rtspd_config cfg;
	char config_path[PATH_MAX];  /* absolute; "" = built-in defaults */
	char media_root[CFG_PATH];   /* realpath of media_dir */
	struct ev_loop *loop;
	struct listener listeners[MAX_LISTENERS];
	int nlisteners;
	int64_t started_us;
	/* control socket (control.c) */
	int ctl_fd;                  /* -1 when there is none */
	char ctl_path[CFG_PATH];     /* what ctl_fd is bound to, unlinked at exit */
	struct ctl_conn *ctl_conns;
	uint32_t next_query;
	/* systemd (service.c) */
	bool notify;                 /* NOTIFY_SOCKET was set */
	uint64_t watchdog_usec;      /* 0: no watchdog */
	char last_status[256];
	int signal_fd;
	struct pending *pending;
	int npending;
	struct proc *procs;
	struct stream_rec *streams;
	/* TLS front (master/tlsfront.c) */
	struct tls_proc *tls_procs;
	struct tls_proc *tls_current;
	int tls_crashes;             /* recent, for back-off */
	int64_t tls_backoff_until_us;
	/* back channel (master/talk.c) */
	struct talk_proc *talks;
	struct talk_wait *talk_waits;   /* oldest first */
	unsigned next_stream_index;  /* for the next stream record */
	uint32_t next_conn_id;
	bool stopping;
	int64_t stop_deadline_us;
	const char *self_exe;
};

#endif
