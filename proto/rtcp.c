/* rtcp.c — see rtcp.h. */
#include "proto/rtcp.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define NTP_UNIX_OFFSET 2208988800ULL

uint64_t rtcp_ntp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t sec = (uint64_t)ts.tv_sec + NTP_UNIX_OFFSET;
	uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000ULL;
	return sec << 32 | frac;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int put_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
		  uint32_t packets, uint32_t octets)
{
	if (cap < 28)
		return -ENOSPC;
	buf[0] = 0x80;          /* V=2, P=0, RC=0 */
	buf[1] = RTCP_SR;
	buf[2] = 0;
	buf[3] = 6;             /* 7 words - 1 */
	put32(buf + 4, ssrc);
	put32(buf + 8, (uint32_t)(ntp >> 32));
	put32(buf + 12, (uint32_t)ntp);
	put32(buf + 16, rtp_ts);
	put32(buf + 20, packets);
	put32(buf + 24, octets);
	return 28;
}

static int put_sdes(uint8_t *buf, size_t cap, uint32_t ssrc, const char *cname)
{
	size_t cl = strlen(cname);
	if (cl > 255)
		cl = 255;
	/* header 4 + ssrc 4 + item (2 + cl) + end 1, padded to 32 bits */
	size_t len = (8 + 2 + cl + 1 + 3) & ~(size_t)3;
	if (cap < len)
		return -ENOSPC;
	memset(buf, 0, len);
	buf[0] = 0x81;          /* one chunk */
	buf[1] = RTCP_SDES;
	buf[2] = (uint8_t)((len / 4 - 1) >> 8);
	buf[3] = (uint8_t)(len / 4 - 1);
	put32(buf + 4, ssrc);
	buf[8] = 1;             /* CNAME */
	buf[9] = (uint8_t)cl;
	memcpy(buf + 10, cname, cl);
	return (int)len;
}

int rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
		  uint32_t packets, uint32_t octets, const char *cname)
{
	int a = put_sr(buf, cap, ssrc, ntp, rtp_ts, packets, octets);
	if (a < 0)
		return a;
	int b = put_sdes(buf + a, cap - (size_t)a, ssrc, cname);
	if (b < 0)
		return b;
	return a + b;
}

int rtcp_build_bye(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
		   uint32_t packets, uint32_t octets, const char *cname)
{
	int n = rtcp_build_sr(buf, cap, ssrc, ntp, rtp_ts, packets, octets, cname);
	if (n < 0)
		return n;
	if (cap - (size_t)n < 8)
		return -ENOSPC;
	uint8_t *p = buf + n;
	p[0] = 0x81;            /* one SSRC */
	p[1] = RTCP_BYE;
	p[2] = 0;
	p[3] = 1;
	put32(p + 4, ssrc);
	return n + 8;
}

bool rtcp_valid(const uint8_t *buf, size_t len)
{
	if (len < 8 || (buf[0] >> 6) != 2 || (buf[1] != RTCP_SR && buf[1] != RTCP_RR))
		return false;
	size_t off = 0;
	while (off + 4 <= len) {
		if ((buf[off] >> 6) != 2)
			return false;
		size_t plen = ((size_t)buf[off + 2] << 8 | buf[off + 3]) * 4 + 4;
		if (off + plen > len)
			return false;
		off += plen;
	}
	return off == len;
}
