/* sdp.h — the session description a DESCRIBE answers with (RFC 4566 as
 * RFC 2326 App C uses it). The per-track "m=" sections come from the
 * packetizers (FFmpeg's av_sdp_create); this module writes the session
 * part around them and the control URLs: a session-level "a=control:*"
 * and "a=control:trackID=N" per track, relative to a Content-Base that ends
 * in '/', which both ffmpeg's join and RFC 3986 resolution understand.
 * Pure function over caller buffers. */
#ifndef RTSPD_SDP_H
#define RTSPD_SDP_H

#include <stdbool.h>
#include <stddef.h>

struct sdp_session {
	const char *origin_ip;     /* the server address the client reached */
	bool ipv6;
	unsigned session_id;
	const char *name;          /* s= */
	const char *tool;          /* a=tool: */
	bool live;                 /* a=range:npt=now- */
	double duration;           /* seconds; 0 = unknown (npt=0-) */
	/* Multicast (a ?t=multicast URL): the group goes in c= (with its TTL,
	 * RFC 4566 §5.7) and track i's port, mcast_port + 2i, in its m= line.
	 * NULL for unicast: c= 0.0.0.0 and port 0, the address being SETUP's. */
	const char *mcast_group;
	int mcast_ttl;
	int mcast_port;
	/* SRTP (SDES, RFC 4568), unicast only: NULL, or per track an
	 * "a=crypto:..." line (no CRLF) or NULL. A track with one is offered
	 * as RTP/SAVP. */
	const char *const *crypto;
};

/* Writes the SDP; sections[i] is track i's "m=" block (CRLF lines, no
 * a=control; its first line is the m= line). Returns the length, -ENOSPC,
 * or -EINVAL for a multicast description whose section does not start
 * with "m=<media> <port> ". */
int sdp_build(char *buf, size_t cap, const struct sdp_session *s, const char *const *sections, int n);

#endif
