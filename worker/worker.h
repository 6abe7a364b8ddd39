/* worker.h — a worker process: serves one stream (source) to its RTSP
 * clients. Entry point worker_main(); the functions below are shared by the
 * worker's modules (client.c: connections, session.c: sessions and the send
 * path, methods.c: RTSP methods). See worker-t.h for ownership. */
#ifndef RTSPD_WORKER_H
#define RTSPD_WORKER_H

#include <sys/uio.h>

#include "proto/rtsp.h"
#include "worker/worker-t.h"

/* Runs a worker on the IPC socket ipc_fd until told to stop; returns the exit code. */
int worker_main(int ipc_fd);

/* worker.c */
void worker_schedule_reap(struct worker *w);
void worker_status_changed(struct worker *w);

/* client.c */
struct client *client_new(struct worker *w, int fd, const struct ipc_client *ic, const uint8_t *bytes);
void client_close(struct client *c);                        /* deferred */
/* To the out buffer: one message (a WebSocket frame of its own on a ws
 * connection). _raw: bytes as they are, e.g. the rest of a frame already
 * begun. */
int client_queue(struct client *c, const void *data, size_t len);
int client_queue_raw(struct client *c, const void *data, size_t len);
void client_flush(struct client *c);                        /* out buffer, then media */
void client_want_write(struct client *c);                   /* wake up when writable */
void client_free(struct client *c);
void client_process(struct client *c);                      /* parse and handle what is in c->in */
int client_reserve_in(struct client *c, size_t need);      /* grow c->in (up to its limit) */

/* websocket.c: RTSP over WebSocket (the handshake was the master's) */
void ws_client_read(struct client *c);                      /* socket readable */
void ws_client_decode(struct client *c);                    /* c->raw frames → c->in, then parse */
int ws_client_reserve(struct client *c, size_t need);       /* grow c->raw */

/* tunnel.c: RTSP over HTTP */
/* A new connection's first bytes: 0 need more, 1 it is a tunnel half (or was
 * refused), -1 it is plain RTSP. */
int tunnel_accept_head(struct client *c);
void tunnel_feed(struct client *post);                      /* POST input → its GET */
void tunnel_closed(struct client *c);                       /* from client_close */
void tunnel_housekeeping(struct client *c, int64_t now);

/* session.c */
struct session *session_new(struct worker *w, struct client *c);
struct session *session_find(struct worker *w, const char *id);
void session_end(struct session *s, bool send_bye);        /* deferred */
void session_free(struct session *s);
int session_setup_udp(struct session *s, int track, const struct sockaddr_storage *peer,
		      int client_rtp, int client_rtcp);
/* Binds the session's UDP server port pair for slot (0 video, 1 audio,
 * 2 metadata, 3 back channel) in its block of SESSION_PORTS. */
int session_udp_pair(struct session *s, int slot, int family, int *rtp_fd, int *rtcp_fd, int *port);
/* Whether a datagram from this address is the session's client's. */
bool session_from_client(const struct session *s, const struct sockaddr_storage *from);
/* SRTP: one context per track from keys (moved from the connection);
 * 0, or -errno (the caller ends the session). */
int session_srtp_start(struct session *s, const uint8_t keys[][SRTP_KEY_LEN], int ntracks);
/* Plain RTCP, or SRTCP authentic under the track's key (track -1: unknown). */
bool session_rtcp_ok(struct session *s, int track, const uint8_t *buf, size_t len);
void session_play(struct session *s);
void session_send(struct session *s);                       /* from the ring, as much as possible */
void session_send_sr(struct session *s);
void session_housekeeping(struct session *s, int64_t now);
void sessions_notify(struct media *m, void *arg);           /* media_notify_fn */
/* Sends n packets (iovecs into the ring) on a connected UDP socket with one
 * sendmmsg; returns how many went out (the rest are dropped, never retried). */
int udp_send_packets(struct worker *w, int fd, struct iovec *iov, int n);

/* mcast.c: the multicast sender */
/* Makes s a multicast session: opens the sender (sockets, media) if it is
 * the first; s->media becomes the sender's media. 0 or -errno (err says why). */
int mcast_attach(struct worker *w, struct session *s, char *err, size_t errlen);
/* Counts s in or out of the sender's PLAYING refcount after a state change
 * (PLAY, PAUSE, end); the group goes quiet when the count reaches 0. */
void mcast_session_update(struct session *s);
void mcast_detach(struct worker *w, struct session *s);     /* from session_free */
void mcast_send(struct worker *w);                          /* from the ring, as much as possible */
/* The ring packet the group will carry next (RTP-Info of a new viewer). */
uint64_t mcast_next_packet(struct worker *w);
void mcast_housekeeping(struct worker *w, int64_t now);     /* sender reports every 5 s */
void mcast_bye(struct worker *w);                           /* worker stop: RTCP BYE to the group */
void mcast_close(struct worker *w);                         /* worker exit: free what is left */

/* backchannel.c: the talker's side of the audio back channel */
/* The formats the DESCRIBE offers (this worker's config, this FFmpeg). */
int backchannel_formats(struct worker *w, struct bc_format *out);
/* SETUP of the back-channel track: asks the master for the device and
 * answers when it replies (the connection reads no further request
 * meanwhile). created: s was made by this SETUP (ended on refusal). */
void backchannel_setup(struct client *c, const struct rtsp_request *req, struct session *s, bool created);
/* IPC_TALK_RESULT from the master. */
void backchannel_result(struct worker *w, uint32_t request_id, const struct ipc_talk_result *r);
/* A '$' frame on the session's back-channel channels; true if it was one. */
bool backchannel_interleaved(struct session *s, uint8_t channel, const uint8_t *data, size_t len);
void backchannel_free(struct session *s);                   /* from session_free */

/* methods.c */
void methods_handle(struct client *c, const struct rtsp_request *req);
void methods_reply_error(struct client *c, int status, int cseq, const char *why);
/* 200 with these header lines (CRLF-terminated), for answers given late. */
void methods_reply_ok(struct client *c, int cseq, const char *headers, size_t len);

#endif
