/* backchannel.c — see backchannel.h. */
#include "proto/backchannel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Payload types: the static ones of RFC 3551, and dynamic ones from 96 on
 * in the order ONVIF's example uses for G.726. */
enum { PT_PCMU = 0, PT_PCMA = 8, PT_G722 = 9, PT_G726_16 = 97, PT_G726_24 = 98, PT_G726_32 = 99,
       PT_G726_40 = 100, PT_AAC = 101, PT_OPUS = 102 };

static const int aac_rates[] = { 96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
				 16000, 12000, 11025, 8000, 7350 };

static void set(struct bc_format *f, uint8_t pt, const char *name, uint32_t clock, uint8_t ch, uint32_t rate)
{
	memset(f, 0, sizeof *f);
	f->pt = pt;
	snprintf(f->name, sizeof f->name, "%s", name);
	f->clock_rate = clock;
	f->channels = ch;
	f->sample_rate = rate;
}

static void g726(struct bc_format *f, int kbps)
{
	static const uint8_t pts[] = { PT_G726_16, PT_G726_24, PT_G726_32, PT_G726_40 };
	char name[16];
	snprintf(name, sizeof name, "G726-%d", kbps);
	set(f, pts[kbps / 8 - 2], name, 8000, 1, 8000);
	f->g726_bits = (uint8_t)(kbps / 8);
}

/* AAC-LC in RFC 3640's AAC-hbr mode (13-bit sizes, 3-bit indexes). */
static void aac(struct bc_format *f, int rate, int channels)
{
	int idx = 8;   /* 16000 */
	for (int i = 0; i < (int)(sizeof aac_rates / sizeof aac_rates[0]); i++)
		if (aac_rates[i] == rate)
			idx = i;
	rate = aac_rates[idx];
	if (channels < 1 || channels > 2)
		channels = 1;
	set(f, PT_AAC, "mpeg4-generic", (uint32_t)rate, (uint8_t)channels, (uint32_t)rate);
	/* AudioSpecificConfig: objectType 2 (5 bits), frequency index (4),
	 * channel configuration (4), then 3 zero bits. */
	unsigned asc = 2u << 11 | (unsigned)idx << 7 | (unsigned)channels << 3;
	f->aac_config[0] = (uint8_t)(asc >> 8);
	f->aac_config[1] = (uint8_t)asc;
	f->aac_config_len = 2;
	snprintf(f->fmtp, sizeof f->fmtp,
		 "streamtype=5;profile-level-id=15;mode=AAC-hbr;config=%02X%02X;sizelength=13;indexlength=3;"
		 "indexdeltalength=3", f->aac_config[0], f->aac_config[1]);
}

static void opus(struct bc_format *f)
{
	/* RFC 7587: always opus/48000/2 in the rtpmap; mono is welcome. */
	set(f, PT_OPUS, "opus", 48000, 2, 48000);
	snprintf(f->fmtp, sizeof f->fmtp, "sprop-stereo=0");
}

/* The config's codec name as the format family it asks for. */
static int family_of(const char *codec)
{
	static const char *const names[] = { "G711U", "G711A", "G722", "G726", "AAC", "OPUS" };
	for (int i = 0; i < 6; i++)
		if (!strcasecmp(codec, names[i]))
			return i;
	if (!strcasecmp(codec, "PCMU"))
		return 0;
	if (!strcasecmp(codec, "PCMA"))
		return 1;
	return 0;
}

int bc_formats(const char *codec, int samplerate, int channels, int bitrate,
	       bool (*available)(const char *name, void *arg), void *arg, struct bc_format *out)
{
	struct bc_format all[BC_MAX_FORMATS];
	int n = 0;
	int pref = family_of(codec ? codec : "");
	int g726_pref = bitrate == 16 || bitrate == 24 || bitrate == 40 ? bitrate : 32;
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: the preferred family; pass 1: every other */
		for (int fam = 0; fam < 6; fam++) {
			if ((fam == pref) != (pass == 0))
				continue;
			switch (fam) {
			case 0: set(&all[n++], PT_PCMU, "PCMU", 8000, 1, 8000); break;
			case 1: set(&all[n++], PT_PCMA, "PCMA", 8000, 1, 8000); break;
			case 2: set(&all[n++], PT_G722, "G722", 8000, 1, 16000); break;
			case 3:
				g726(&all[n++], g726_pref);
				for (int k = 16; k <= 40; k += 8)
					if (k != g726_pref)
						g726(&all[n++], k);
				break;
			case 4: aac(&all[n++], samplerate ? samplerate : 16000, channels ? channels : 1); break;
			case 5: opus(&all[n++]); break;
			}
		}
	}
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!available || available(all[i].name, arg))
			out[m++] = all[i];
	return m;
}

int bc_sdp_section(char *buf, size_t cap, const struct bc_format *f, int n)
{
	size_t len = 0;
	int w = snprintf(buf, cap, "m=audio 0 RTP/AVP");
	if (w < 0 || (size_t)w >= cap)
		return -ENOSPC;
	len = (size_t)w;
	for (int i = 0; i < n; i++) {
		w = snprintf(buf + len, cap - len, " %u", f[i].pt);
		if (w < 0 || (size_t)w >= cap - len)
			return -ENOSPC;
		len += (size_t)w;
	}
	w = snprintf(buf + len, cap - len, "\r\n");
	if (w < 0 || (size_t)w >= cap - len)
		return -ENOSPC;
	len += (size_t)w;
	for (int i = 0; i < n; i++) {
		/* mpeg4-generic always names its channels (as FFmpeg's SDP
		 * does): some depayloaders refuse it without. */
		if (f[i].channels > 1 || f[i].aac_config_len)
			w = snprintf(buf + len, cap - len, "a=rtpmap:%u %s/%u/%u\r\n", f[i].pt, f[i].name,
				     f[i].clock_rate, f[i].channels);
		else
			w = snprintf(buf + len, cap - len, "a=rtpmap:%u %s/%u\r\n", f[i].pt, f[i].name,
				     f[i].clock_rate);
		if (w < 0 || (size_t)w >= cap - len)
			return -ENOSPC;
		len += (size_t)w;
		if (f[i].fmtp[0]) {
			w = snprintf(buf + len, cap - len, "a=fmtp:%u %s\r\n", f[i].pt, f[i].fmtp);
			if (w < 0 || (size_t)w >= cap - len)
				return -ENOSPC;
			len += (size_t)w;
		}
	}
	w = snprintf(buf + len, cap - len, "a=sendonly\r\n");
	if (w < 0 || (size_t)w >= cap - len)
		return -ENOSPC;
	return (int)(len + (size_t)w);
}

const struct bc_format *bc_find(const struct bc_format *f, int n, uint8_t pt)
{
	for (int i = 0; i < n; i++)
		if (f[i].pt == pt)
			return &f[i];
	return NULL;
}
