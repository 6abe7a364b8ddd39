/* ring-t.h — layout of the shared-memory packet ring (see ring.h).
 *
 * One memfd, mapped by the writer (the worker's media pipeline) and by any
 * number of readers, in this or another process:
 *
 *   [struct ring_hdr][struct ring_slot x nslots][data area: data_size bytes]
 *
 * Every RTP packet is written once: its bytes go to the data area (a byte
 * ring, a packet never straddles the end), and a slot records where.
 * Packet n lives in slot n % nslots. Readers hold a cursor (a packet index),
 * never a lock: the writer never waits for anybody, and a reader that has
 * been lapped finds out (slot seq or data position moved on) and skips.
 */
#ifndef RTSPD_RING_T_H
#define RTSPD_RING_T_H

#include <stdint.h>

#define RING_MAGIC   0x31474e5250535452ULL   /* "RTSPRNG1" little-endian */
#define RING_VERSION 1
#define RING_MAX_TRACKS 4
#define RING_MAX_PACKET 2048

enum ring_flags {
	RING_KEY = 1,       /* first packet of a key frame: a viewer may start here */
	RING_MARKER = 2,    /* last packet of an access unit */
	RING_EOS = 4,       /* end of stream (no payload): send RTCP BYE */
};

struct ring_track {
	uint32_t clock_rate;
	uint32_t ssrc;
	/* RTP time of the most recent packet and the monotonic time it was due:
	 * rtp(t) = last_rtp + (t - last_us) * clock_rate / 1e6 (for RTCP SR). */
	uint32_t last_rtp;
	uint32_t next_seq;      /* RTP sequence number the next packet will carry */
	int64_t  last_us;
	uint64_t packets;
	uint64_t octets;
};

struct ring_slot {
	uint64_t seq;       /* packet index stored here; written last */
	uint64_t pos;       /* absolute byte position of the packet in the data stream */
	int64_t  time_us;   /* monotonic time the packet was due */
	uint32_t rtp_ts;
	uint16_t len;
	uint8_t  track;
	uint8_t  flags;     /* enum ring_flags */
};

struct ring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t writer_pid;
	uint32_t nslots;        /* power of two */
	uint32_t data_size;
	uint32_t hdr_size;      /* sizeof(struct ring_hdr), for version checks */
	uint32_t ntracks;
	uint64_t write_seq;     /* packets written so far = index of the next one (atomic) */
	uint64_t key_seq;       /* index of the latest RING_KEY packet, UINT64_MAX if none (atomic) */
	uint64_t data_head;     /* absolute byte position of the next write (atomic) */
	uint64_t generation;    /* bumped when the writer restarts its timeline */
	struct ring_track tracks[RING_MAX_TRACKS];
};

#endif
