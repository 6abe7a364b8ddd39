/* rtcp.h — RTCP packets the server sends (SR + SDES, BYE) and the checks on
 * what clients send (RFC 3550 §6). Pure functions over caller buffers. */
#ifndef RTSPD_RTCP_H
#define RTSPD_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_SDES 202
#define RTCP_BYE 203

/* NTP time (seconds since 1900 in 32.32 fixed point) of the wall clock now. */
uint64_t rtcp_ntp_now(void);

/* Compound SR + SDES(CNAME). Returns the length or -ENOSPC. */
int rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
		  uint32_t packets, uint32_t octets, const char *cname);
/* Compound SR + SDES(CNAME) + BYE: the end of a stream. */
int rtcp_build_bye(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
		   uint32_t packets, uint32_t octets, const char *cname);

/* True when buf holds a plausible compound RTCP packet (version 2, first
 * packet SR or RR, lengths consistent). */
bool rtcp_valid(const uint8_t *buf, size_t len);

#endif
