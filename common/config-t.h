/* config-t.h — the types of rtspd's configuration (the Happytime rtspserver.cfg
 * XML format plus our extensions).
 *
 * Ownership: a struct rtspd_config is built by config_load()/config_defaults()
 * (config.h) and owned by whoever holds the pointer; config_free() releases it
 * and every array inside it. Strings are fixed-size arrays so a config can be
 * copied with memcpy and sent to workers as one blob; variable-length lists
 * (users, outputs, proxies, pushers) are heap arrays with a count.
 */
#ifndef RTSPD_CONFIG_T_H
#define RTSPD_CONFIG_T_H

#include <stdbool.h>
#include <limits.h>

#define CFG_STR   256      /* names, codecs, hosts */
#define CFG_PATH  1024     /* file system paths and URLs */

enum file_mode { FILE_MODE_ONDEMAND = 0, FILE_MODE_LIVE = 1 };
enum transfer_mode { TRANSFER_TCP = 0, TRANSFER_UDP = 1, TRANSFER_MULTICAST = 2, TRANSFER_RTSP = 3 };
enum notify_method { NOTIFY_POST = 0, NOTIFY_GET = 1 };

/* <video> inside <output>/<pusher>: 0 or "" means "as the source". */
struct cfg_video {
	char codec[32];          /* H264 H265 MP4 JPEG, or "" */
	int  width, height;      /* pixels */
	int  framerate;          /* frames per second */
	int  bitrate;            /* kbit/s */
};

/* <audio> inside <output>/<pusher>/<backchannel>. */
struct cfg_audio {
	char codec[32];          /* G711A G711U G722 G726 AAC OPUS, or "" */
	int  samplerate;         /* 8000 ... 48000 */
	int  channels;           /* 1 or 2 */
	int  bitrate;            /* kbit/s */
};

struct cfg_user {
	char username[CFG_STR];
	char password[CFG_STR];
};

/* <output>: per URL pattern, what to send. First match wins; an empty url
 * matches everything. */
struct cfg_output {
	char url[CFG_PATH];
	struct cfg_video video;
	struct cfg_audio audio;
	int  line;               /* line in the config file, for messages */
};

struct cfg_proxy {
	char suffix[CFG_STR];
	char url[CFG_PATH];
	char user[CFG_STR];
	char pass[CFG_STR];
	enum transfer_mode transfer;   /* TCP UDP MULTICAST */
	bool ondemand;
	bool has_output;
	struct cfg_output output;
	int  line;
};

struct cfg_pusher {
	char suffix[CFG_STR];
	struct cfg_video video;
	struct cfg_audio audio;
	enum transfer_mode transfer;   /* TCP UDP (RTSP needs no node) */
	int  vport, aport;
	char ip[CFG_STR];              /* <transfer><ip>: local address the pushed RTP
	                                * is received on, "" = every address (added:
	                                * Happytime's pusher examples carry this node) */
	bool srtp;
	bool has_output;
	struct cfg_output output;
	int  line;
};

struct cfg_backchannel {
	bool enable;             /* node present and not disabled */
	struct cfg_audio audio;  /* preferred codec first in the SDP */
	char device[CFG_STR];    /* ALSA device, our extension; default "default" */
	char wav_dir[CFG_PATH];  /* our extension: also record each talk here as WAV; "" = no */
};

struct cfg_http_notify {
	bool enable;
	char url[CFG_PATH];
	enum notify_method method;
	bool on_connect, on_play, on_publish, on_done;
	int  timeout_ms;         /* our extension; default 3000 */
};

struct rtspd_config {
	char source_path[CFG_PATH];   /* file it came from, "" for built-in defaults */

	/* system parameters */
	char serverip[CFG_STR];       /* "" = any address */
	int  rtsp_port;               /* default 554; the shipped config uses 8554 */
	bool rtsps_enable;
	int  rtsps_port;              /* default 322 */
	char rtsps_cert[CFG_PATH];
	char rtsps_key[CFG_PATH];
	int  loop_nums;               /* -1 forever, else >= 1 */
	bool multicast;
	int  udp_base_port;           /* default 22000; 8 ports per session */
	bool metadata;
	bool rtsp_over_http;
	int  http_port;               /* default 80 */
	bool rtsp_over_https;
	int  https_port;              /* default 443 */
	char https_cert[CFG_PATH];
	char https_key[CFG_PATH];
	bool ipv6_enable;
	bool need_auth;
	bool log_enable;
	int  log_level;               /* 0 TRACE ... 5 FATAL */

	struct cfg_http_notify http_notify;
	struct cfg_backchannel backchannel;

	struct cfg_user   *users;   int nusers;
	struct cfg_output *outputs; int noutputs;
	struct cfg_proxy  *proxies; int nproxies;
	struct cfg_pusher *pushers; int npushers;

	/* our extensions */
	char media_dir[CFG_PATH];     /* default "." (the current directory) */
	enum file_mode file_mode;     /* default on demand */
	char control_socket[CFG_PATH];/* default /run/rtspd/control.sock */
	int  session_timeout;         /* seconds, default 60 */
	int  worker_idle_timeout;     /* seconds a worker with no session lives on, default 10 */
	int  max_sessions;            /* per server, default 10000 */
	int  slow_viewer_timeout;     /* seconds a viewer may stay stalled before it is dropped, default 10 */
	int  ring_size_kb;            /* shared ring data area per live stream, default 8192 */
	/* multicast: stream number i of the master gets the group base + i and
	 * the ports port_base + CFG_MCAST_PORTS * i (config_multicast_address) */
	char multicast_group_base[CFG_STR]; /* an IPv4 address in 232.0.0.0/8, default 232.0.1.0 */
	int  multicast_port_base;     /* default 26000 */
	int  multicast_ttl;           /* 1..255, default 16 */
	bool srtp_over_plain_rtsp;    /* give SRTP keys (?srtp=1) over unencrypted RTSP too, default 0 */
};

/* Ports reserved per stream for multicast, as for a unicast session: video,
 * audio, metadata, back channel; RTP + RTCP each (track i: base + 2i). */
#define CFG_MCAST_PORTS 8

#endif
