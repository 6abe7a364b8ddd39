/* worker-t.h — the types of a worker process: the worker context, RTSP
 * client connections and sessions.
 *
 * Ownership:
 *  - struct worker owns every client and session (two intrusive lists), the
 *    shared live media (if any) and the event loop.
 *  - A client owns its socket fd. A session using TCP interleaved points to
 *    the client carrying it; the client points back (c->session). Closing
 *    the client ends that session. A UDP session outlives its connection
 *    until TEARDOWN or timeout.
 *  - An on-demand session owns its own media; a live session borrows the
 *    worker's shared one.
 *  - struct worker owns at most one multicast sender (struct mcast): the
 *    stream's group, its sockets, and its own ring cursor. Multicast
 *    sessions borrow its media (the worker's live media, or for an
 *    on-demand stream a broadcast media the sender owns) and send nothing
 *    themselves: the sender sends each packet once to the group while at
 *    least one of them is PLAYING (refcount `playing`), and is freed when
 *    the last multicast session is freed (`users`).
 *  - SRTP keys: made at DESCRIBE and kept by the connection, moved into
 *    the session its next SETUP creates (the connection's copy is wiped);
 *    the session owns its SRTP contexts and frees them with itself.
 *  - Destruction is deferred: code that finds a client or session dead marks
 *    it (->dead) and the worker reaps it from the loop, so no callback ever
 *    runs on freed memory.
 */
#ifndef RTSPD_WORKER_T_H
#define RTSPD_WORKER_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/ev.h"
#include "common/ipc-t.h"
#include "proto/base64.h"
#include "worker/media.h"
#include "worker/srtp.h"

#define CLIENT_IN_CAP   (RTSP_IN_LIMIT)
#define CLIENT_BUF_START 2048
#define RTSP_IN_LIMIT   (8192 + 65536 + 16)
#define CLIENT_OUT_CAP  (256 * 1024)   /* responses + at most one partial packet */
#define CLIENT_NOTSENT_LOWAT (128 * 1024)
#define SESSION_ID_LEN  16
#define SESSION_PORTS   8              /* video, audio, metadata, back channel: RTP + RTCP */

struct client;
struct session;

/* The audio back channel of a session (backchannel.c): the talker's RTP
 * arrives on UDP server ports or interleaved channels and is passed on,
 * never waited for, through pkt_fd to the talk process that owns the
 * device. */
struct session_talk {
	bool setup;                          /* the master granted the device */
	bool pending;                        /* SETUP waits for the master's answer */
	bool tcp;
	int ch_rtp, ch_rtcp;                 /* interleaved */
	int rtp_fd, rtcp_fd;                 /* UDP server ports (slot 3) */
	int server_port;
	int pkt_fd;                          /* our end of the packet socket, -1 once closed */
	uint32_t request_id;
	uint32_t waiting_conn;               /* the connection whose SETUP waits */
	int cseq;
	bool created;                        /* the waiting SETUP created the session */
	char transport[256];                 /* the Transport answer, once granted */
	char url[1024];
	uint64_t packets, dropped, early;    /* passed on; refused by a full socket; before PLAY */
	struct srtp_tx *srtp;                /* SRTP sessions: checks and decrypts the talker's SRTP */
	uint64_t srtp_errors;                /* packets that did not authenticate (dropped) */
};

struct session_track {
	bool setup;
	bool tcp;
	int ch_rtp, ch_rtcp;                 /* interleaved channels */
	int rtp_fd, rtcp_fd;                 /* UDP sockets bound to the server ports */
	int server_port;                     /* RTP port (RTCP = +1) */
	struct sockaddr_storage rtp_dst, rtcp_dst;
	socklen_t dst_len;
	char url[1024];                      /* as the client sent it in SETUP (for RTP-Info) */
	uint32_t packets, octets;            /* sent, for SR */
	bool sr_sent;
	bool bye_sent;
};

enum session_state { SESSION_INIT, SESSION_READY, SESSION_PLAYING };

struct session {
	struct session *next, *prev;
	struct worker *w;
	char id[SESSION_ID_LEN + 1];
	enum session_state state;
	bool mcast;                          /* its tracks are the worker's multicast group */
	bool mcast_counted;                  /* counted in the sender's `playing` */
	struct client *client;               /* TCP carrier, or NULL */
	struct media *media;                 /* shared (live) or own (on demand) */
	bool own_media;
	struct session_track tracks[SOURCE_MAX_TRACKS];
	int port_base;                       /* first of SESSION_PORTS UDP ports, -1 if none */
	uint64_t cursor;                     /* next ring packet to send */
	bool udp_blocked;
	int64_t last_seen_us;                /* last request or RTCP from the client */
	int64_t last_sr_us;
	int64_t stalled_since_us;            /* 0 when not stalled */
	uint64_t skips, bytes_out, packets_out, udp_drops;
	int64_t created_us;
	uint32_t setup_conn;                 /* conn_id of the connection that set it up */
	struct client *setup_client;         /* that connection while it is open (client_close clears it) */
	uint64_t rate_prev_bytes;            /* bytes_out at rate_prev_us */
	int64_t rate_prev_us;
	uint64_t bitrate;                    /* bit/s over the last second or so */
	char peer[64];
	struct sockaddr_storage peer_addr;   /* the RTSP client's address: UDP only goes there */
	/* SRTP (?srtp=1): one key and context per track, taken from the
	 * DESCRIBE on the connection that created the session; srtp_buf holds
	 * the protected copies of one send batch (the only per-viewer copy of
	 * media). All NULL for plain RTP. */
	struct srtp_tx *srtp[SOURCE_MAX_TRACKS];
	uint8_t *srtp_buf;
	uint64_t srtp_errors;                /* packets libsrtp refused (dropped) */
	struct session_talk *talk;           /* the back channel, if set up (owned) */
	uint8_t talk_key[SRTP_KEY_LEN];      /* SRTP sessions: the back channel's key (from DESCRIBE) */
	bool dead;
};

/* What a connection is. An RTSP-over-HTTP tunnel is two: the GET carries
 * everything to the client (responses and media, raw) and is the RTSP
 * client the methods and sessions see; the POST carries the client's
 * requests base64-encoded, decoded into the GET's input. */
enum client_kind {
	CLIENT_NEW,          /* first bytes not looked at yet */
	CLIENT_RTSP,
	CLIENT_TUNNEL_GET,
	CLIENT_TUNNEL_POST,
};

#define TUNNEL_COOKIE_MAX 128

struct client {
	struct client *next, *prev;
	enum client_kind kind;
	char cookie[TUNNEL_COOKIE_MAX];      /* x-sessioncookie of a tunnel half */
	struct client *tunnel_peer;          /* the other half, once both are here */
	struct b64_stream b64;               /* POST: decoder state */
	bool ws;                             /* RTSP over WebSocket: frames both ways */
	bool ws_fragmented;                  /* a fragmented message is open (continuations due) */
	bool ws_text;                        /* ... and it is a text message: UTF-8 checked */
	uint32_t ws_utf8;                    /* ws_utf8_feed() state of the open text message */
	bool secure;                         /* arrived over TLS (RTSPS, HTTPS tunnel, wss) */
	uint8_t *raw;                        /* ws: frames not decoded yet */
	size_t raw_len, raw_cap;
	struct worker *w;
	int fd;
	uint32_t conn_id;
	char peer[64];
	struct sockaddr_storage peer_addr;
	struct sockaddr_storage local_addr;
	uint8_t *in;                         /* grows up to CLIENT_IN_CAP */
	size_t in_len, in_cap;
	uint8_t *out;                        /* grows up to CLIENT_OUT_CAP */
	size_t out_off, out_len, out_cap;
	struct session *session;             /* interleaved session on this connection */
	/* SRTP: the keys the last DESCRIBE of an ?srtp=1 URL put in its SDP,
	 * until the SETUP that creates a session on this connection takes them
	 * (so no two sessions ever share a key). */
	bool srtp_keys_ready;
	uint8_t srtp_keys[SOURCE_MAX_TRACKS + 1][SRTP_KEY_LEN];   /* + the back channel's */
	int64_t last_activity_us;
	uint64_t session_mark;               /* = the worker's housekeeping round while a live session was set up here */
	bool closing;                        /* send what is queued, then close */
	bool waiting;                        /* a SETUP waits for the master: read no further request */
	bool dead;
};

/* The stream's multicast sender (mcast.c): a pseudo-viewer of the media
 * with its own cursor, sending every packet once to the group. */
struct mcast {
	struct media *media;                 /* w->live, or its own broadcast (own_media) */
	bool own_media;
	int users;                           /* multicast sessions not yet freed */
	int playing;                         /* of them PLAYING: the group carries data while > 0 */
	uint64_t cursor;                     /* next ring packet to send */
	int rtp_fd[SOURCE_MAX_TRACKS];       /* connected to group:port + 2i */
	int rtcp_fd[SOURCE_MAX_TRACKS];      /* connected to group:port + 2i + 1 */
	uint32_t packets[SOURCE_MAX_TRACKS], octets[SOURCE_MAX_TRACKS];   /* for SR */
	bool sr_sent[SOURCE_MAX_TRACKS], bye_sent[SOURCE_MAX_TRACKS];
	int64_t last_sr_us;
	uint64_t skips, drops, bytes_out, packets_out;
};

struct worker {
	struct ev_loop *loop;
	int ipc_fd;
	struct ipc_worker_config cfg;
	bool configured;
	struct media *live;                  /* shared media (live streams) */
	struct media *describe_media;        /* on demand: opened once to describe the stream */
	struct mcast *mcast;                 /* multicast sender, while a multicast session exists */
	struct client *clients;
	struct session *sessions;
	int nclients, nsessions;
	bool draining;                       /* graceful stop: exit when no client is left */
	bool stopping;
	bool reap_pending;
	long long housekeeping_timer;
	uint32_t next_conn_id;
	uint32_t next_talk_request;
	uint64_t housekeeping_round;         /* counts worker_housekeeping() runs */
	uint64_t bytes_out, packets_out;
	uint64_t bytes_in_closed;            /* source bytes of on-demand media already closed */
	char cname[128];
	int next_port_block;                 /* where the next UDP port search starts, -1 at first */
	bool udp_no_gso;                     /* the kernel refused UDP_SEGMENT */
	int64_t last_status_us;              /* last IPC_STATUS to the master */
};

#endif
