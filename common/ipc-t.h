/* ipc-t.h — message types of the master <-> worker channel (see ipc.h). */
#ifndef RTSPD_IPC_T_H
#define RTSPD_IPC_T_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/config-t.h"
#include "proto/backchannel.h"

#define IPC_VERSION 5
#define IPC_MAX_PAYLOAD 65536

struct ipc_hdr {
	uint16_t type;      /* enum ipc_type */
	uint16_t version;   /* IPC_VERSION */
	uint32_t len;       /* payload bytes after this header */
	uint32_t peer;      /* connection id the message is about, 0 if none */
	uint32_t pid;       /* sender's pid */
};

enum ipc_type {
	IPC_NONE = 0,
	/* master -> worker */
	IPC_WORKER_CONFIG = 1,  /* struct ipc_worker_config: what to serve */
	IPC_CLIENT = 2,         /* fd: a client connection; struct ipc_client + the bytes already read */
	IPC_SHUTDOWN = 3,       /* stop: end sessions cleanly (RTCP BYE) and exit */
	IPC_LOG_LEVEL = 4,      /* int32 level */
	IPC_SESSIONS_QUERY = 5, /* peer = query id, no payload: answer with IPC_SESSIONS */
	IPC_KICK = 6,           /* peer = query id, char[] session id: end it, answer IPC_KICK_RESULT */
	/* worker -> master */
	IPC_READY = 16,         /* the worker's source is open; payload: none */
	IPC_STATUS = 17,        /* struct ipc_worker_status, sent on change and every second */
	IPC_SOURCE_ERROR = 18,  /* the source cannot be opened: char[] reason; the worker exits */
	IPC_SESSIONS = 19,      /* peer = query id: struct ipc_sessions + count x struct ipc_session_info */
	IPC_KICK_RESULT = 20,   /* peer = query id: int32 0 (ended) or -ENOENT */
	/* rtspctl <-> master, on the control socket */
	IPC_CTL_REQUEST = 32,   /* the command's words, each NUL-terminated */
	IPC_CTL_OUTPUT = 33,    /* a piece of the answer, text for stdout */
	IPC_CTL_DONE = 34,      /* struct ipc_ctl_done + text for stderr: the command is over */
	/* master <-> TLS front process (tls/tlsfront.h) */
	IPC_TLS_CONFIG = 48,    /* master -> tls: struct ipc_tls_config, first message */
	IPC_TLS_CONN = 49,      /* master -> tls, fd: an accepted TLS connection; struct ipc_tls_conn */
	IPC_TLS_PLAIN = 50,     /* tls -> master, fd: the plain end of a relayed connection; struct ipc_tls_conn */
	/* the audio back channel (talk/talk.h) */
	IPC_TALK_ACQUIRE = 64,  /* worker -> master, fd: the talker's packet socket; struct ipc_talk (peer = request id) */
	IPC_TALK_RESULT = 65,   /* master -> worker: struct ipc_talk_result (peer = request id) */
	IPC_TALK_START = 66,    /* master -> talk process, fd: the packet socket; struct ipc_talk */
	IPC_TALK_READY = 67,    /* talk -> master: the device is open, audio may come */
	IPC_TALK_ERROR = 68,    /* talk -> master: char[] reason; the process exits */
	IPC_TALK_STATUS = 69,   /* talk -> master: struct ipc_talk_status, on change and every second */
	IPC_TALK_RELEASE = 70,  /* worker -> master: the talker of request id `peer` is gone (no payload) */
	IPC_TYPE_MAX
};

enum source_kind {
	SOURCE_FILE = 1,
	SOURCE_TEST = 2,
};

/* IPC_WORKER_CONFIG */
struct ipc_worker_config {
	uint32_t source_kind;       /* enum source_kind */
	uint32_t live;              /* 1: one broadcast through the ring; 0: on demand */
	int32_t  loop_nums;         /* -1 forever */
	int32_t  udp_base_port;
	int32_t  session_timeout;   /* seconds */
	int32_t  slow_viewer_timeout;
	int32_t  ring_size_kb;
	int32_t  log_level;
	int32_t  log_enable;
	int32_t  max_sessions;
	uint32_t srtp_over_plain_rtsp; /* 1: SRTP keys may go out over plain RTSP */
	char     stream_key[1100];  /* = ROUTE_KEY_MAX; what the master routes on, e.g. "sample.mp4?mode=live" */
	char     file_path[1024];   /* absolute, already checked to be inside media_dir */
	char     serverip[256];
	/* The first <output> matching this stream, if any. Transcoding is not
	 * implemented yet (the master says so at start-up); it is here so that
	 * a reload that changes it restarts this stream and only this one. */
	uint32_t has_output;
	struct cfg_video out_video;
	struct cfg_audio out_audio;
	/* Multicast: the group and first port the master assigned to this
	 * stream (stable across worker restarts, never another stream's);
	 * track i uses mcast_port + 2i (RTP) and + 2i + 1 (RTCP). */
	uint32_t multicast;         /* <multicast>: SETUP may ask multicast on any URL */
	char     mcast_group[64];   /* dotted IPv4 in 232.0.0.0/8 */
	int32_t  mcast_port;        /* CFG_MCAST_PORTS ports from here */
	int32_t  mcast_ttl;
	/* The audio back channel: offered in DESCRIBE when asked for (the
	 * Require tag); bc_audio is the config's preferred format. The device
	 * is the master's business (master/talk.c). */
	uint32_t backchannel;
	struct cfg_audio bc_audio;
};

/* IPC_CLIENT payload: this header, then `nbytes` bytes the master already
 * read (for a WebSocket: already taken out of their frames), then, for a
 * WebSocket, `raw_nbytes` bytes of frames not decoded yet. */
#define IPC_CLIENT_WS 1u            /* RTSP over WebSocket, handshake done */
#define IPC_CLIENT_WS_FRAGMENTED 2u /* ... in the middle of a fragmented message */
#define IPC_CLIENT_TLS 4u           /* arrived over TLS: the fd is the TLS front's plain end */
#define IPC_CLIENT_WS_TEXT 8u       /* the open fragmented message is text (ws_utf8: its UTF-8 state) */
struct ipc_client {
	uint32_t conn_id;
	uint32_t nbytes;
	uint32_t flags;             /* IPC_CLIENT_* */
	uint32_t raw_nbytes;
	uint32_t ws_utf8;           /* with IPC_CLIENT_WS_TEXT */
	char     peer_addr[64];     /* "1.2.3.4:5678" or "[::1]:5678" */
	/* The client's TCP addresses. The fd's own may differ (a socketpair
	 * from the TLS front): UDP media and the SDP go by these. */
	struct sockaddr_storage peer_ss, local_ss;
};

/* Which TLS listener a connection came in on: what it speaks inside. */
enum tls_kind {
	TLS_RTSPS = 1,              /* RTSP (and RTSP over HTTP/WebSocket, like the RTSP port) */
	TLS_HTTPS = 2,              /* the HTTPS tunnel and wss */
};

/* IPC_TLS_CONFIG: certificate and key per listener kind; "" = kind unused. */
struct ipc_tls_config {
	char     rtsps_cert[CFG_PATH], rtsps_key[CFG_PATH];
	char     https_cert[CFG_PATH], https_key[CFG_PATH];
	int32_t  handshake_timeout_ms;
	int32_t  log_level;
	int32_t  log_enable;
};

/* IPC_TLS_CONN and IPC_TLS_PLAIN */
struct ipc_tls_conn {
	uint32_t conn_id;
	uint32_t kind;              /* enum tls_kind */
	struct sockaddr_storage peer, local;
};

/* IPC_TALK_ACQUIRE and IPC_TALK_START: a talker wants the device. The
 * worker sends its end of a SOCK_SEQPACKET socketpair; the talk process
 * reads one RTP packet per message from it, each after a
 * struct talk_packet_hdr. Closing it ends the talk. */
struct ipc_talk {
	char     device[CFG_STR];       /* ALSA PCM name */
	char     wav_path[CFG_PATH];    /* also record to this WAV file; "" = no */
	char     stream[256];
	char     session[24];
	char     client[64];
	int32_t  log_level;
	int32_t  log_enable;
	uint32_t nformats;
	struct bc_format formats[BC_MAX_FORMATS];   /* what the SDP offered: the PT selects one */
};

struct talk_packet_hdr {
	int64_t  arrival_us;            /* CLOCK_MONOTONIC when the worker received it */
};

/* IPC_TALK_RESULT */
struct ipc_talk_result {
	int32_t  status;                /* 200, or the RTSP status the SETUP gets (453, 503) */
	char     reason[256];
};

/* IPC_TALK_STATUS */
struct ipc_talk_status {
	uint64_t packets;               /* played */
	uint64_t lost, late, duplicates, malformed;
	uint32_t latency_avg_ms;        /* packet arrival to its samples written to ALSA */
	uint32_t latency_max_ms;
	char     codec[24];             /* of the last packet played */
};

/* IPC_STATUS */
struct ipc_worker_status {
	uint32_t sessions;
	uint32_t playing;
	uint64_t bytes_out;         /* RTP/RTCP bytes sent to viewers, since start */
	uint64_t packets_out;
	uint64_t bytes_in;          /* RTP bytes the source produced into the ring, since start */
};

/* IPC_SESSIONS: one or more messages per query; the last has more = 0. */
struct ipc_sessions {
	uint32_t count;             /* struct ipc_session_info records that follow */
	uint32_t more;
};

struct ipc_session_info {
	char     id[24];
	char     client[64];        /* the RTSP client's address */
	char     transport[16];     /* "TCP", "UDP", "TCP/SRTP", "UDP/SRTP" */
	uint32_t state;             /* 0 init, 1 ready, 2 playing */
	uint32_t age_s;
	uint64_t bytes;             /* sent to this viewer */
	uint64_t bitrate;           /* bit/s over the last second */
	uint64_t skips;             /* times it was moved to the live edge (slow viewer) */
};
#define IPC_SESSIONS_PER_MSG ((IPC_MAX_PAYLOAD - sizeof(struct ipc_sessions)) / sizeof(struct ipc_session_info))

/* IPC_CTL_DONE */
struct ipc_ctl_done {
	int32_t exit_code;          /* what rtspctl exits with: 0 done, 1 refused/failed, 2 usage */
};

#endif
