/* sdp.c — see sdp.h. */
#include "proto/sdp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* A track's section; with a crypto line its m= line's profile becomes
 * RTP/SAVP and the key follows the section's own attributes. */
static void put_section(struct out *o, const char *sec, const char *crypto)
{
	if (!crypto) {
		put(o, "%s", sec);
		return;
	}
	const char *avp = strstr(sec, " RTP/AVP ");
	const char *eol = strstr(sec, "\r\n");
	if (!strncmp(sec, "m=", 2) && avp && (!eol || avp < eol))
		put(o, "%.*s RTP/SAVP %s", (int)(avp - sec), sec, avp + strlen(" RTP/AVP "));
	else
		put(o, "%s", sec);
	put(o, "%s\r\n", crypto);
}

int sdp_build(char *buf, size_t cap, const struct sdp_session *s, const char *const *sections, int n)
{
	if (!cap)
		return -ENOSPC;
	struct out o = { buf, cap, 0, false };
	const char *net = s->ipv6 ? "IP6" : "IP4";
	put(&o, "v=0\r\n");
	put(&o, "o=- %u 1 IN %s %s\r\n", s->session_id, net, s->origin_ip);
	put(&o, "s=%s\r\n", s->name && *s->name ? s->name : "rtspd");
	if (s->mcast_group)
		put(&o, "c=IN IP4 %s/%d\r\n", s->mcast_group, s->mcast_ttl);
	else   /* Unicast: the address is given by SETUP, not here (RFC 2326 C.1.7). */
		put(&o, "c=IN %s %s\r\n", net, s->ipv6 ? "::" : "0.0.0.0");
	put(&o, "t=0 0\r\n");
	if (s->tool)
		put(&o, "a=tool:%s\r\n", s->tool);
	put(&o, "a=control:*\r\n");
	if (s->live)
		put(&o, "a=range:npt=now-\r\n");
	else if (s->duration > 0)
		put(&o, "a=range:npt=0-%.3f\r\n", s->duration);
	else
		put(&o, "a=range:npt=0-\r\n");
	for (int i = 0; i < n; i++) {
		const char *sec = sections[i];
		if (s->mcast_group) {
			/* "m=<media> <port> ...": the port of the group, in place of
			 * the packetizer's 0. */
			const char *sp1 = strncmp(sec, "m=", 2) ? NULL : strchr(sec, ' ');
			const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
			const char *eol = strstr(sec, "\r\n");
			if (!sp2 || (eol && sp2 > eol)) {
				buf[0] = 0;
				return -EINVAL;
			}
			put(&o, "%.*s%d%s", (int)(sp1 + 1 - sec), sec, s->mcast_port + 2 * i, sp2);
		} else {
			put_section(&o, sec, s->crypto ? s->crypto[i] : NULL);
		}
		put(&o, "a=control:trackID=%d\r\n", i);
	}
	if (o.full) {
		buf[0] = 0;
		return -ENOSPC;
	}
	return (int)o.len;
}
