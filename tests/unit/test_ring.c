/* test_ring.c — unit tests of the shared-memory packet ring (common/ring.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/ring.h"

/* ------------------------------------------------------------ helpers */

/* A packet recognisable from its index: the index in the first 8 bytes (or
 * as many as fit), then bytes derived from it. */
static void fill_packet(uint8_t *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = i < 8 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 131 + i * 7 + (i >> 8));
}

static bool packet_ok(const uint8_t *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t want = i < 8 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 131 + i * 7 + (i >> 8));
		if (p[i] != want)
			return false;
	}
	return true;
}

/* Varying sizes, 1 .. RING_MAX_PACKET, mostly not multiples of 8. */
static size_t size_of(uint64_t seq)
{
	return 1 + (size_t)((seq * 2654435761u) % RING_MAX_PACKET);
}

static uint32_t rtp_of(uint64_t seq)
{
	return (uint32_t)(0xfffff000u + seq * 3000);
}

static int64_t time_of(uint64_t seq)
{
	return 1000000 + (int64_t)seq * 33333;
}

static unsigned track_of(uint64_t seq)
{
	return (unsigned)(seq % 3);
}

static unsigned flags_of(uint64_t seq)
{
	return (seq % 30 == 0 ? RING_KEY : 0) | (seq % 3 == 2 ? RING_MARKER : 0);
}

static uint64_t write_one(struct ring *r, uint64_t seq, size_t len)
{
	static uint8_t buf[RING_MAX_PACKET];
	fill_packet(buf, len, seq);
	return ring_write(r, track_of(seq), flags_of(seq), time_of(seq), rtp_of(seq), buf, len);
}

static int make_memfd(size_t size)
{
	int fd = memfd_create("test-ring", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void write_at(int fd, const void *p, size_t len, off_t off)
{
	assert_int_equal(pwrite(fd, p, len, off), (ssize_t)len);
}

/* ------------------------------------------------------------ create / attach */

static void test_create(void **state)
{
	struct ring r;
	assert_int_equal(ring_create(&r, "t", 100, 64 * 1024), 0);
	assert_non_null(r.hdr);
	assert_true(r.fd >= 0);
	assert_true(r.writer);
	const struct ring_hdr *h = r.hdr;
	assert_true(h->magic == RING_MAGIC);
	assert_int_equal(h->version, RING_VERSION);
	assert_int_equal(h->hdr_size, sizeof(struct ring_hdr));
	assert_int_equal(h->nslots, 128);               /* rounded up to a power of two */
	assert_int_equal(h->data_size, 64 * 1024);
	assert_int_equal(h->writer_pid, (uint32_t)getpid());
	assert_true(h->write_seq == 0);
	assert_true(h->data_head == 0);
	assert_true(h->key_seq == UINT64_MAX);
	assert_int_equal(h->ntracks, 0);
	size_t want = sizeof(struct ring_hdr) + 128 * sizeof(struct ring_slot) + 64 * 1024;
	assert_int_equal(r.map_size, want);
	assert_ptr_equal((void *)r.slots, (void *)(r.hdr + 1));
	assert_ptr_equal((void *)r.data, (void *)(r.slots + 128));
	for (unsigned i = 0; i < 128; i++)
		assert_true(r.slots[i].seq == UINT64_MAX);
	struct stat st;
	assert_int_equal(fstat(r.fd, &st), 0);
	assert_int_equal((size_t)st.st_size, want);
	/* the size is sealed */
	assert_true(ftruncate(r.fd, (off_t)want + 4096) < 0);
	assert_true(ftruncate(r.fd, 4096) < 0);
	assert_true(ring_head(&r) == 0);
	assert_true(ring_join_point(&r) == 0);
	ring_close(&r);
	assert_null(r.hdr);
	assert_int_equal(r.fd, -1);

	/* powers of two stay as they are */
	assert_int_equal(ring_create(&r, "t", 16, 4 * RING_MAX_PACKET), 0);
	assert_int_equal(r.hdr->nslots, 16);
	ring_close(&r);
	assert_int_equal(ring_create(&r, "t", 17, 4 * RING_MAX_PACKET), 0);
	assert_int_equal(r.hdr->nslots, 32);
	ring_close(&r);
	assert_int_equal(ring_create(&r, "t", 1000, 4 * RING_MAX_PACKET), 0);
	assert_int_equal(r.hdr->nslots, 1024);
	ring_close(&r);

	/* out of range */
	assert_int_equal(ring_create(&r, "t", 15, 64 * 1024), -EINVAL);
	assert_int_equal(r.fd, -1);
	assert_int_equal(ring_create(&r, "t", 0, 64 * 1024), -EINVAL);
	assert_int_equal(ring_create(&r, "t", (1u << 24) + 1, 64 * 1024), -EINVAL);
	assert_int_equal(ring_create(&r, "t", 64, 4 * RING_MAX_PACKET - 1), -EINVAL);
	ring_close(&r);                                 /* harmless after a failure */
}

static void test_attach(void **state)
{
	struct ring w, rd;
	assert_int_equal(ring_create(&w, "t", 64, 32 * 1024), 0);
	ring_set_track(&w, 0, 90000, 0x1234);
	assert_true(write_one(&w, 0, 100) == 0);

	assert_int_equal(ring_attach(&rd, w.fd), 0);
	assert_false(rd.writer);
	assert_true(rd.fd >= 0);
	assert_int_not_equal(rd.fd, w.fd);              /* its own descriptor */
	assert_int_equal(rd.map_size, w.map_size);
	assert_ptr_not_equal(rd.hdr, w.hdr);            /* its own mapping */
	assert_int_equal(rd.hdr->nslots, 64);
	assert_int_equal(rd.hdr->data_size, 32 * 1024);
	assert_int_equal(rd.hdr->ntracks, 1);
	assert_int_equal(rd.hdr->tracks[0].clock_rate, 90000);
	assert_int_equal(rd.hdr->tracks[0].ssrc, 0x1234);
	assert_ptr_equal((void *)rd.data, (void *)((uint8_t *)rd.hdr + (w.data - (uint8_t *)w.hdr)));

	/* the reader sees what the writer writes, as it writes it */
	struct ring_slot s;
	const uint8_t *d;
	assert_true(ring_head(&rd) == 1);
	assert_int_equal(ring_peek(&rd, 0, &s, &d), 0);
	assert_true(packet_ok(d, 100, 0));
	assert_int_equal(ring_peek(&rd, 1, &s, &d), -EAGAIN);
	write_one(&w, 1, 200);
	assert_int_equal(ring_peek(&rd, 1, &s, &d), 0);
	assert_int_equal(s.len, 200);
	assert_true(packet_ok(d, 200, 1));

	/* the caller keeps its fd, the reader owns its copy */
	int rfd = rd.fd;
	ring_close(&rd);
	assert_null(rd.hdr);
	assert_true(fcntl(w.fd, F_GETFD) >= 0);
	assert_true(fcntl(rfd, F_GETFD) < 0);

	/* a reader may come and go several times */
	assert_int_equal(ring_attach(&rd, w.fd), 0);
	assert_true(ring_head(&rd) == 2);
	ring_close(&rd);
	ring_close(&w);
}

static void test_attach_rejects(void **state)
{
	struct ring w, rd;
	assert_int_equal(ring_create(&w, "t", 16, 4 * RING_MAX_PACKET), 0);
	struct ring_hdr good = *w.hdr;
	size_t full = w.map_size;
	ring_close(&w);

	/* empty, or smaller than the header */
	int fd = make_memfd(0);
	assert_int_equal(ring_attach(&rd, fd), -EINVAL);
	assert_null(rd.hdr);
	assert_int_equal(rd.fd, -1);
	close(fd);
	fd = make_memfd(10);
	assert_int_equal(ring_attach(&rd, fd), -EINVAL);
	close(fd);
	fd = make_memfd(sizeof good - 1);
	write_at(fd, &good, sizeof good - 1, 0);
	assert_int_equal(ring_attach(&rd, fd), -EINVAL);
	close(fd);

	/* a valid header, but the file is shorter or longer than it says */
	fd = make_memfd(sizeof good);
	write_at(fd, &good, sizeof good, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	close(fd);
	fd = make_memfd(full - 1);
	write_at(fd, &good, sizeof good, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	close(fd);
	fd = make_memfd(full + 4096);
	write_at(fd, &good, sizeof good, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	close(fd);

	/* the right size but a wrong header: all zero, magic, version,
	 * header size, slot count not a power of two */
	fd = make_memfd(full);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	struct ring_hdr h = good;
	h.magic = RING_MAGIC ^ 1;
	write_at(fd, &h, sizeof h, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	h = good;
	h.version = RING_VERSION + 1;
	write_at(fd, &h, sizeof h, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	h = good;
	h.hdr_size = sizeof h - 8;
	write_at(fd, &h, sizeof h, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	close(fd);
	h = good;
	h.nslots = 24;
	fd = make_memfd(sizeof h + 24 * sizeof(struct ring_slot) + h.data_size);
	write_at(fd, &h, sizeof h, 0);
	assert_int_equal(ring_attach(&rd, fd), -EPROTO);
	close(fd);

	/* the hand-built copy of a good header is accepted */
	fd = make_memfd(full);
	write_at(fd, &good, sizeof good, 0);
	assert_int_equal(ring_attach(&rd, fd), 0);
	assert_int_equal(rd.hdr->nslots, 16);
	ring_close(&rd);
	close(fd);

	/* a file descriptor that is not a file at all */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(ring_attach(&rd, p[0]) < 0);
	assert_null(rd.hdr);
	close(p[0]);
	close(p[1]);
	ring_close(&rd);
}

/* A header whose geometry ring_create never produces: no slots at all, or no
 * data area. The sizes add up, so only the geometry check can catch them;
 * a reader that accepted them would index slots[seq & 0xffffffff] (no
 * slots) or divide by a zero data_size. */
static int attach_hand_built(const struct ring_hdr *h, size_t size)
{
	struct ring rd;
	int fd = make_memfd(size);
	write_at(fd, h, sizeof *h, 0);
	int e = ring_attach(&rd, fd);
	if (e == 0)
		ring_close(&rd);
	close(fd);
	return e;
}

static void test_attach_rejects_degenerate(void **state)
{
	struct ring w;
	assert_int_equal(ring_create(&w, "t", 16, 4 * RING_MAX_PACKET), 0);
	struct ring_hdr good = *w.hdr;
	ring_close(&w);

	struct ring_hdr no_slots = good;
	no_slots.nslots = 0;
	int e1 = attach_hand_built(&no_slots, sizeof no_slots + no_slots.data_size);

	/* with one packet announced: a reader peeking at it divides by 0 */
	struct ring_hdr no_data = good;
	no_data.data_size = 0;
	no_data.write_seq = 1;
	int e2 = attach_hand_built(&no_data, sizeof no_data + no_data.nslots * sizeof(struct ring_slot));

	if (e1 != -EPROTO || e2 != -EPROTO)
		fail_msg("ring_attach returned %d for nslots = 0 and %d for data_size = 0, want %d (-EPROTO)",
			 e1, e2, -EPROTO);
}

/* ------------------------------------------------------------ write / read */

static void test_write_read(void **state)
{
	struct ring r;
	assert_int_equal(ring_create(&r, "t", 64, 64 * 1024), 0);
	static const size_t lens[] = { 12, 1400, 1, 0, 7, 8, 9, RING_MAX_PACKET, 333 };
	const size_t n = sizeof lens / sizeof lens[0];
	for (size_t i = 0; i < n; i++) {
		assert_true(ring_head(&r) == i);
		assert_true(write_one(&r, i, lens[i]) == i);
		assert_true(ring_head(&r) == i + 1);
	}
	for (size_t i = 0; i < n; i++) {
		struct ring_slot s;
		const uint8_t *d = NULL;
		assert_int_equal(ring_peek(&r, i, &s, &d), 0);
		assert_true(s.seq == i);
		assert_int_equal(s.len, lens[i]);
		assert_int_equal(s.track, track_of(i));
		assert_int_equal(s.flags, flags_of(i));
		assert_int_equal(s.rtp_ts, rtp_of(i));
		assert_true(s.time_us == time_of(i));
		assert_non_null(d);
		assert_true(d >= r.data && d + s.len <= r.data + r.hdr->data_size);
		assert_true(packet_ok(d, s.len, i));
		assert_true(ring_valid(&r, i, s.pos));
		/* positions increase, packets do not overlap */
		if (i > 0) {
			struct ring_slot p;
			const uint8_t *pd;
			assert_int_equal(ring_peek(&r, i - 1, &p, &pd), 0);
			assert_true(s.pos >= p.pos + p.len);
		}
	}
	struct ring_slot s;
	const uint8_t *d;
	assert_int_equal(ring_peek(&r, n, &s, &d), -EAGAIN);
	assert_int_equal(ring_peek(&r, n + 1, &s, &d), -EAGAIN);
	assert_int_equal(ring_peek(&r, UINT64_MAX - 1, &s, &d), -EAGAIN);
	assert_false(ring_lagging(&r, n));
	assert_false(ring_lagging(&r, n + 100));

	/* longer than RING_MAX_PACKET: cut to RING_MAX_PACKET */
	static uint8_t big[RING_MAX_PACKET + 100];
	fill_packet(big, sizeof big, n);
	assert_true(ring_write(&r, 1, RING_KEY | RING_MARKER, 5, 6, big, sizeof big) == n);
	assert_int_equal(ring_peek(&r, n, &s, &d), 0);
	assert_int_equal(s.len, RING_MAX_PACKET);
	assert_int_equal(s.flags, RING_KEY | RING_MARKER);
	assert_true(packet_ok(d, RING_MAX_PACKET, n));

	/* end of stream: no payload, flags kept */
	assert_true(ring_write(&r, 2, RING_EOS, 77, 0, NULL, 0) == n + 1);
	assert_int_equal(ring_peek(&r, n + 1, &s, &d), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.flags, RING_EOS);
	assert_int_equal(s.track, 2);
	assert_true(s.time_us == 77);
	ring_close(&r);
}

static void test_track_stats(void **state)
{
	struct ring r;
	assert_int_equal(ring_create(&r, "t", 64, 64 * 1024), 0);
	ring_set_track(&r, 1, 48000, 0xabcdef01);
	assert_int_equal(r.hdr->ntracks, 2);
	ring_set_track(&r, 0, 90000, 0x01020304);
	assert_int_equal(r.hdr->ntracks, 2);
	ring_set_track(&r, RING_MAX_TRACKS, 8000, 1);  /* ignored */
	assert_int_equal(r.hdr->ntracks, 2);
	assert_int_equal(r.hdr->tracks[1].clock_rate, 48000);
	assert_int_equal(r.hdr->tracks[1].ssrc, 0xabcdef01);

	uint8_t pkt[500] = { 0 };
	ring_write(&r, 0, RING_KEY, 100, 1000, pkt, 500);
	ring_write(&r, 0, RING_MARKER, 200, 1000, pkt, 300);
	ring_write(&r, 1, 0, 150, 5000, pkt, 100);
	ring_write(&r, 0, RING_EOS, 999, 0, NULL, 0);  /* not a media packet */
	assert_true(r.hdr->tracks[0].packets == 2);
	assert_true(r.hdr->tracks[0].octets == 800);
	assert_int_equal(r.hdr->tracks[0].last_rtp, 1000);
	assert_true(r.hdr->tracks[0].last_us == 200);
	assert_true(r.hdr->tracks[1].packets == 1);
	assert_true(r.hdr->tracks[1].octets == 100);
	assert_int_equal(r.hdr->tracks[1].last_rtp, 5000);
	ring_close(&r);
}

/* Many packets of varying sizes through a small data area. */
static void test_wrap_around(void **state)
{
	struct ring r;
	const uint32_t data_size = 5 * RING_MAX_PACKET + 1000;   /* not a multiple of anything nice */
	assert_int_equal(ring_create(&r, "t", 1024, data_size), 0);
	const uint64_t total = 3000;
	uint64_t bytes = 0;
	for (uint64_t seq = 0; seq < total; seq++) {
		size_t len = size_of(seq);
		bytes += len;
		write_one(&r, seq, len);

		/* every packet still in the ring reads back intact and is in one piece */
		uint64_t oldest = UINT64_MAX;
		size_t held = 0;
		for (uint64_t k = seq + 1; k-- > 0;) {
			struct ring_slot s;
			const uint8_t *d;
			int e = ring_peek(&r, k, &s, &d);
			if (e == -ESTALE)
				break;
			assert_int_equal(e, 0);
			assert_int_equal(s.len, size_of(k));
			assert_true(s.pos % data_size + s.len <= data_size);
			assert_ptr_equal(d, r.data + s.pos % data_size);
			assert_true(packet_ok(d, s.len, k));
			oldest = k;
			held += s.len;
		}
		/* the newest packet is always there; what is gone is gone for
		 * good (the packets before the oldest one are all stale) */
		assert_true(oldest <= seq);
		for (uint64_t k = oldest >= 8 ? oldest - 8 : 0; k < oldest; k++) {
			struct ring_slot s;
			const uint8_t *d;
			assert_int_equal(ring_peek(&r, k, &s, &d), -ESTALE);
		}
		/* the ring keeps at least half its data area (minus one packet
		 * lost to the end) once it is that full, and never more than it */
		assert_true(held <= data_size);
		if (bytes >= data_size)
			assert_true(held + RING_MAX_PACKET + 8 * (seq - oldest + 1) >= data_size / 2);
	}
	assert_true(bytes > 10 * (uint64_t)data_size);
	/* the data area wrapped many times */
	assert_true(r.hdr->data_head > 10 * (uint64_t)data_size);
	ring_close(&r);
}

/* ------------------------------------------------------------ lapped readers */

static void test_lapped_by_slots(void **state)
{
	struct ring r;
	const uint32_t nslots = 64;
	assert_int_equal(ring_create(&r, "t", nslots, 1024 * 1024), 0);
	struct ring_slot s;
	const uint8_t *d;

	/* small packets: only the slots limit the ring */
	uint64_t seq = 0;
	for (; seq <= nslots / 2; seq++) {
		assert_false(ring_lagging(&r, 0));
		write_one(&r, seq, 100);
	}
	/* head - 0 == nslots/2 + 1: lagging, while the packet is still readable */
	assert_true(ring_head(&r) == nslots / 2 + 1);
	assert_true(ring_lagging(&r, 0));
	assert_false(ring_lagging(&r, 1));             /* exactly half behind */
	assert_int_equal(ring_peek(&r, 0, &s, &d), 0);
	assert_true(packet_ok(d, s.len, 0));
	uint64_t pos0 = s.pos;

	for (; seq < nslots; seq++)
		write_one(&r, seq, 100);
	/* a whole ring behind: still there */
	assert_int_equal(ring_peek(&r, 0, &s, &d), 0);
	assert_true(ring_valid(&r, 0, pos0));
	assert_true(ring_lagging(&r, 0));
	write_one(&r, seq++, 100);
	/* one more: packet 0's slot is reused */
	assert_int_equal(ring_peek(&r, 0, &s, &d), -ESTALE);
	assert_false(ring_valid(&r, 0, pos0));
	assert_true(ring_lagging(&r, 0));
	assert_int_equal(ring_peek(&r, 1, &s, &d), 0);

	/* far behind */
	for (; seq < 10 * nslots; seq++)
		write_one(&r, seq, 100);
	for (uint64_t k = 0; k < seq - nslots; k += 7) {
		assert_int_equal(ring_peek(&r, k, &s, &d), -ESTALE);
		assert_true(ring_lagging(&r, k));
	}
	for (uint64_t k = seq - nslots; k < seq; k++) {
		assert_int_equal(ring_peek(&r, k, &s, &d), 0);
		assert_true(packet_ok(d, s.len, k));
		assert_true(ring_lagging(&r, k) == (seq - k > nslots / 2));
	}
	ring_close(&r);
}

static void test_lapped_by_data(void **state)
{
	struct ring r;
	const uint32_t data_size = 8 * RING_MAX_PACKET;
	assert_int_equal(ring_create(&r, "t", 1024, data_size), 0);
	struct ring_slot s;
	const uint8_t *d;

	/* largest packets: the data area limits the ring long before the slots */
	for (uint64_t seq = 0; seq < 4; seq++)
		write_one(&r, seq, RING_MAX_PACKET);
	assert_false(ring_lagging(&r, 0));             /* half the data area written */
	write_one(&r, 4, RING_MAX_PACKET);
	assert_true(ring_lagging(&r, 0));              /* more than half */
	assert_false(ring_lagging(&r, 1));
	assert_int_equal(ring_peek(&r, 0, &s, &d), 0);
	assert_true(packet_ok(d, s.len, 0));
	uint64_t pos0 = s.pos;

	for (uint64_t seq = 5; seq < 8; seq++)
		write_one(&r, seq, RING_MAX_PACKET);
	/* exactly full: everything still readable */
	for (uint64_t k = 0; k < 8; k++) {
		assert_int_equal(ring_peek(&r, k, &s, &d), 0);
		assert_true(packet_ok(d, s.len, k));
	}
	write_one(&r, 8, RING_MAX_PACKET);
	/* the new packet took packet 0's bytes */
	assert_int_equal(ring_peek(&r, 0, &s, &d), -ESTALE);
	assert_false(ring_valid(&r, 0, pos0));
	assert_true(ring_lagging(&r, 0));
	for (uint64_t k = 1; k < 9; k++) {
		assert_int_equal(ring_peek(&r, k, &s, &d), 0);
		assert_true(packet_ok(d, s.len, k));
	}

	/* a reader that read packet k and checks ring_valid() after the
	 * writer moved on finds out its bytes are gone */
	assert_int_equal(ring_peek(&r, 1, &s, &d), 0);
	assert_true(ring_valid(&r, 1, s.pos));
	write_one(&r, 9, 1);
	assert_false(ring_valid(&r, 1, s.pos));
	ring_close(&r);
}

static void test_join_point(void **state)
{
	struct ring r;
	const uint32_t nslots = 32;
	assert_int_equal(ring_create(&r, "t", nslots, 16 * RING_MAX_PACKET), 0);
	uint8_t pkt[100] = { 0 };

	/* no key frame yet: the head */
	assert_true(ring_join_point(&r) == 0);
	for (int i = 0; i < 5; i++)
		ring_write(&r, 0, RING_MARKER, i, i, pkt, sizeof pkt);
	assert_true(ring_join_point(&r) == 5);

	/* the latest key packet */
	assert_true(ring_write(&r, 0, RING_KEY, 10, 10, pkt, sizeof pkt) == 5);
	assert_true(ring_join_point(&r) == 5);
	for (int i = 0; i < 10; i++)
		ring_write(&r, i % 2, i % 3 ? 0 : RING_MARKER, 11 + i, 11, pkt, sizeof pkt);
	assert_true(ring_join_point(&r) == 5);
	assert_true(ring_write(&r, 0, RING_KEY | RING_MARKER, 30, 30, pkt, sizeof pkt) == 16);
	assert_true(ring_join_point(&r) == 16);
	/* an EOS packet is not a place to start */
	ring_write(&r, 0, RING_EOS, 31, 0, NULL, 0);
	assert_true(ring_join_point(&r) == 16);
	struct ring_slot s;
	const uint8_t *d;
	assert_int_equal(ring_peek(&r, ring_join_point(&r), &s, &d), 0);
	assert_true(s.flags & RING_KEY);

	/* the key packet's slot reused: the head */
	while (ring_head(&r) < 16 + nslots - 1)
		ring_write(&r, 1, 0, 40, 40, pkt, sizeof pkt);
	assert_true(ring_join_point(&r) == 16);        /* almost a ring back, still there */
	ring_write(&r, 1, 0, 40, 40, pkt, sizeof pkt);
	ring_write(&r, 1, 0, 40, 40, pkt, sizeof pkt);
	assert_int_equal(ring_peek(&r, 16, &s, &d), -ESTALE);
	assert_true(ring_join_point(&r) == ring_head(&r));
	for (int i = 0; i < 100; i++)
		ring_write(&r, 1, 0, 40, 40, pkt, sizeof pkt);
	assert_true(ring_join_point(&r) == ring_head(&r));
	ring_close(&r);

	/* the key packet's bytes overwritten (big packets, plenty of slots) */
	assert_int_equal(ring_create(&r, "t", 1024, 4 * RING_MAX_PACKET), 0);
	static uint8_t big[RING_MAX_PACKET];
	assert_true(ring_write(&r, 0, RING_KEY, 0, 0, big, sizeof big) == 0);
	for (int i = 0; i < 3; i++)
		ring_write(&r, 0, 0, 0, 0, big, sizeof big);
	assert_true(ring_join_point(&r) == 0);
	ring_write(&r, 0, 0, 0, 0, big, sizeof big);
	assert_int_equal(ring_peek(&r, 0, &s, &d), -ESTALE);
	assert_true(ring_join_point(&r) == ring_head(&r));
	ring_close(&r);
}

/* ------------------------------------------------------------ RTP clock */

static void test_rtp_at(void **state)
{
	struct ring r;
	assert_int_equal(ring_create(&r, "t", 16, 4 * RING_MAX_PACKET), 0);
	ring_set_track(&r, 0, 90000, 1);
	ring_set_track(&r, 1, 48000, 2);
	uint8_t pkt[10] = { 0 };

	ring_write(&r, 0, RING_KEY, 5000000, 1000, pkt, sizeof pkt);
	ring_write(&r, 1, 0, 7000000, 2000, pkt, sizeof pkt);
	assert_int_equal(ring_rtp_at(&r, 0, 5000000), 1000);
	assert_int_equal(ring_rtp_at(&r, 0, 5500000), 1000 + 45000);
	assert_int_equal(ring_rtp_at(&r, 0, 6000000), 1000 + 90000);
	assert_int_equal(ring_rtp_at(&r, 0, 5000100), 1000 + 9);
	/* before the last packet: backwards, modulo 2^32 */
	assert_int_equal(ring_rtp_at(&r, 0, 4900000), (uint32_t)(1000 - 9000));
	/* a day later: modulo 2^32 */
	assert_int_equal(ring_rtp_at(&r, 0, 5000000 + 86400LL * 1000000),
			 (uint32_t)(1000 + 86400ULL * 90000));
	/* each track on its own clock */
	assert_int_equal(ring_rtp_at(&r, 1, 7000000), 2000);
	assert_int_equal(ring_rtp_at(&r, 1, 7250000), 2000 + 12000);
	assert_int_equal(ring_rtp_at(&r, 1, 6000000), (uint32_t)(2000 - 48000));

	/* the latest packet of the track is the reference, wrapping included */
	ring_write(&r, 0, 0, 8000000, 0xffffff00u, pkt, sizeof pkt);
	assert_int_equal(ring_rtp_at(&r, 0, 8000000), 0xffffff00u);
	assert_int_equal(ring_rtp_at(&r, 0, 8010000), (uint32_t)(0xffffff00u + 900));
	/* ... other tracks' packets and EOS do not move it */
	ring_write(&r, 1, 0, 9000000, 5, pkt, sizeof pkt);
	ring_write(&r, 0, RING_EOS, 9500000, 0, NULL, 0);
	assert_int_equal(ring_rtp_at(&r, 0, 8010000), (uint32_t)(0xffffff00u + 900));
	assert_int_equal(ring_rtp_at(&r, 1, 9001000), 5 + 48);

	/* the reader sees the same clock */
	struct ring rd;
	assert_int_equal(ring_attach(&rd, r.fd), 0);
	assert_int_equal(ring_rtp_at(&rd, 0, 8010000), (uint32_t)(0xffffff00u + 900));
	assert_int_equal(ring_rtp_at(&rd, RING_MAX_TRACKS, 8010000), 0);
	ring_close(&rd);
	ring_close(&r);
}

/* ------------------------------------------------------------ another process */

#define CONC_PACKETS 200000u
#define CONC_SLOTS   1024u
#define CONC_DATA    (256u * 1024)
/* Two phases. Up to CONC_EDGE_FROM, the writer stays at most CONC_SLACK
 * packets (a bit less than the data area holds) ahead of the reader: the
 * reader keeps up and reads almost everything, except when it stops on
 * purpose until it has been lapped. From CONC_EDGE_FROM on, the writer runs
 * up to the edge: each write may overwrite the first CONC_EDGE_BYTES bytes
 * of the packet the reader is at, and the reader copies its packet only
 * once the writer has got there, so it keeps copying packets the writer has
 * just overwritten and must notice. */
#define CONC_SLACK      400u
#define CONC_EDGE_FROM  150000u
#define CONC_EDGE_BYTES 256u
#define CONC_LAP_EVERY  20000u

static size_t conc_len(uint64_t seq)
{
	return 8 + (size_t)((seq * 7919) % 1193);
}

/* Shared between the writer and the reading child (anonymous shared map). */
struct conc_shared {
	uint64_t progress;      /* the reader's cursor */
	uint64_t waiting_for;   /* the writer waits for the reader to leave this packet */
	uint32_t free_run;      /* the reader falls behind on purpose: do not wait */
	uint32_t reader_done;
};

struct conc_stats {
	uint64_t verified;      /* packets read, validated and found intact */
	uint64_t stale;         /* -ESTALE from ring_peek */
	uint64_t invalid;       /* copied, then ring_valid() said the bytes were gone */
	uint64_t skipped;       /* packets jumped over after a lap */
	uint64_t forced_laps;   /* times it waited to be lapped */
	uint64_t edge_waits;    /* times it caught the writer at the edge */
	uint64_t eos;
};

enum {
	CHILD_OK = 0,
	CHILD_ATTACH = 10,
	CHILD_BAD_LEN,
	CHILD_BAD_DATA,
	CHILD_BAD_META,
	CHILD_BAD_ORDER,
	CHILD_PIPE,
};

/* Reader: follows the ring like a viewer, copying each packet out and
 * validating it afterwards; any packet it would have accepted must be
 * exactly the one the writer wrote. */
static int conc_reader(int fd, struct conc_shared *sh, int stats_fd)
{
	struct ring r;
	if (ring_attach(&r, fd) != 0)
		return CHILD_ATTACH;
	struct conc_stats st = { 0 };
	static uint8_t copy[RING_MAX_PACKET];
	uint64_t cur = ring_join_point(&r);
	uint64_t last_seen = 0;
	bool seen_any = false;
	__atomic_store_n(&sh->progress, cur, __ATOMIC_RELEASE);
	for (;;) {
		struct ring_slot s;
		const uint8_t *d;
		int e = ring_peek(&r, cur, &s, &d);
		if (e == -EAGAIN) {
			if (ring_head(&r) > CONC_PACKETS)       /* EOS written, nothing left */
				break;
			sched_yield();
			continue;
		}
		if (e == -ESTALE) {
			st.stale++;
			uint64_t jp = ring_join_point(&r);
			uint64_t next = jp > cur ? jp : ring_head(&r);
			st.skipped += next - cur;
			cur = next;
			__atomic_store_n(&sh->progress, cur, __ATOMIC_RELEASE);
			continue;
		}
		if (e != 0)
			return CHILD_BAD_META;
		if (s.len > RING_MAX_PACKET)
			return CHILD_BAD_LEN;
		if (cur >= CONC_EDGE_FROM) {
			/* let the writer catch up with this packet first */
			for (int i = 0; i < 2000; i++) {
				if (__atomic_load_n(&sh->waiting_for, __ATOMIC_ACQUIRE) == cur) {
					st.edge_waits++;
					break;
				}
				if (ring_head(&r) > CONC_PACKETS)
					break;
				sched_yield();
			}
		}
		memcpy(copy, d, s.len);
		if (!ring_valid(&r, cur, s.pos)) {
			st.invalid++;
			continue;                       /* peek again: now stale */
		}
		/* accepted: must be exactly packet cur */
		if (s.seq != cur)
			return CHILD_BAD_META;
		if (s.flags & RING_EOS) {
			if (cur != CONC_PACKETS || s.len != 0)
				return CHILD_BAD_META;
			st.eos++;
			break;
		}
		if (s.len != conc_len(cur))
			return CHILD_BAD_LEN;
		if (!packet_ok(copy, s.len, cur))
			return CHILD_BAD_DATA;
		if (s.rtp_ts != rtp_of(cur) || s.time_us != time_of(cur) ||
		    s.track != track_of(cur) || s.flags != flags_of(cur))
			return CHILD_BAD_META;
		if (seen_any && cur <= last_seen)
			return CHILD_BAD_ORDER;
		seen_any = true;
		last_seen = cur;
		st.verified++;
		cur++;
		if (cur % CONC_LAP_EVERY == 0 && cur < CONC_EDGE_FROM) {
			/* fall behind on purpose: wait until the writer is two laps ahead */
			st.forced_laps++;
			__atomic_store_n(&sh->free_run, 1, __ATOMIC_RELEASE);
			while (ring_head(&r) <= cur + 2 * CONC_SLOTS)
				sched_yield();
			__atomic_store_n(&sh->free_run, 0, __ATOMIC_RELEASE);
		}
		__atomic_store_n(&sh->progress, cur, __ATOMIC_RELEASE);
	}
	ring_close(&r);
	__atomic_store_n(&sh->reader_done, 1, __ATOMIC_RELEASE);
	if (write(stats_fd, &st, sizeof st) != (ssize_t)sizeof st)
		return CHILD_PIPE;
	return CHILD_OK;
}

/* Where the writer put each packet in the data stream. */
static uint64_t conc_pos[CONC_PACKETS];

static double elapsed(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Whether the writer may write packet seq (len bytes) with the reader at p. */
static bool conc_may_write_at(const struct ring *w, const struct conc_shared *sh, uint64_t p,
			      uint64_t seq, size_t len)
{
	if (p >= seq || __atomic_load_n(&sh->free_run, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&sh->reader_done, __ATOMIC_ACQUIRE))
		return true;
	if (seq < CONC_EDGE_FROM)
		return seq < p + CONC_SLACK;
	if (seq - p >= CONC_SLOTS)
		return false;
	/* the end of this write, at most CONC_EDGE_BYTES into packet p
	 * (the wrap skip may take it further: that is fine too) */
	uint64_t end = w->hdr->data_head + len;
	return end <= conc_pos[p] + CONC_DATA + CONC_EDGE_BYTES;
}

/* Whether the writer may write packet seq (len bytes) now; if not, tells
 * the reader which packet it waits on. */
static bool conc_may_write(const struct ring *w, struct conc_shared *sh, uint64_t seq, size_t len)
{
	uint64_t p = __atomic_load_n(&sh->progress, __ATOMIC_ACQUIRE);
	bool ok = conc_may_write_at(w, sh, p, seq, len);
	if (!ok)
		__atomic_store_n(&sh->waiting_for, p, __ATOMIC_RELEASE);
	return ok;
}

static void test_concurrent_reader(void **state)
{
	struct ring w;
	assert_int_equal(ring_create(&w, "t", CONC_SLOTS, CONC_DATA), 0);
	for (unsigned t = 0; t < 3; t++)
		ring_set_track(&w, t, 90000, t + 1);
	struct conc_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof *sh);
	sh->progress = UINT64_MAX;
	sh->waiting_for = UINT64_MAX;
	int stats[2];
	assert_int_equal(pipe(stats), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);                      /* never outlive a stuck test */
		close(stats[0]);
		/* the child inherited the memfd: attach to it like a reader
		 * that was handed the descriptor */
		int rc = conc_reader(w.fd, sh, stats[1]);
		_exit(rc);
	}
	close(stats[1]);

	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* wait for the reader to be attached */
	while (__atomic_load_n(&sh->progress, __ATOMIC_ACQUIRE) == UINT64_MAX && elapsed(&t0) < 10)
		sched_yield();
	assert_true(sh->progress == 0);

	static uint8_t buf[RING_MAX_PACKET];
	bool timed_out = false;
	for (uint64_t seq = 0; seq < CONC_PACKETS && !timed_out; seq++) {
		size_t len = conc_len(seq);
		for (unsigned spin = 0; !conc_may_write(&w, sh, seq, len); spin++) {
			if (spin % 1024 == 1023 && elapsed(&t0) > 10) {
				timed_out = true;
				break;
			}
			sched_yield();
		}
		fill_packet(buf, len, seq);
		assert_true(ring_write(&w, track_of(seq), flags_of(seq), time_of(seq), rtp_of(seq), buf, len) == seq);
		conc_pos[seq] = w.slots[seq & (CONC_SLOTS - 1)].pos;
	}
	ring_write(&w, 0, RING_EOS, time_of(CONC_PACKETS), 0, NULL, 0);

	/* the child has 20 s (alarm) to finish */
	int status = 0;
	pid_t got;
	do
		got = waitpid(pid, &status, 0);
	while (got < 0 && errno == EINTR);
	double secs = elapsed(&t0);
	assert_int_equal(got, pid);
	if (WIFSIGNALED(status))
		fail_msg("reader killed by signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != CHILD_OK)
		fail_msg("reader failed with code %d", WEXITSTATUS(status));
	assert_false(timed_out);

	struct conc_stats st;
	assert_int_equal(read(stats[0], &st, sizeof st), (ssize_t)sizeof st);
	close(stats[0]);
	munmap(sh, sizeof *sh);
	print_message("reader: %llu intact, %llu stale, %llu invalidated after the copy, %llu skipped, "
		      "%llu at the edge, %.2f s\n",
		      (unsigned long long)st.verified, (unsigned long long)st.stale,
		      (unsigned long long)st.invalid, (unsigned long long)st.skipped,
		      (unsigned long long)st.edge_waits, secs);
	/* it read a good part of the stream, was lapped (on purpose at
	 * least), copied packets the writer was overwriting and noticed, and
	 * accounted for every packet it did not read */
	assert_true(st.verified > CONC_PACKETS / 4);
	assert_true(st.edge_waits > 0);
	assert_true(st.invalid > 0);
	assert_int_equal(st.forced_laps, CONC_EDGE_FROM / CONC_LAP_EVERY);
	assert_true(st.stale >= st.forced_laps);
	assert_true(st.skipped >= st.forced_laps * CONC_SLOTS);
	assert_true(st.verified + st.skipped <= CONC_PACKETS);
	ring_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_attach),
		cmocka_unit_test(test_attach_rejects),
		cmocka_unit_test(test_attach_rejects_degenerate),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_track_stats),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_lapped_by_slots),
		cmocka_unit_test(test_lapped_by_data),
		cmocka_unit_test(test_join_point),
		cmocka_unit_test(test_rtp_at),
		cmocka_unit_test(test_concurrent_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
