/* ring.c — see ring.h and ring-t.h. */
#include "common/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t ring_map_size(uint32_t nslots, uint32_t data_size)
{
	return sizeof(struct ring_hdr) + (size_t)nslots * sizeof(struct ring_slot) + data_size;
}

static void ring_bind(struct ring *r, void *base)
{
	r->hdr = base;
	r->slots = (struct ring_slot *)((uint8_t *)base + sizeof(struct ring_hdr));
	r->data = (uint8_t *)(r->slots + r->hdr->nslots);
}

int ring_create(struct ring *r, const char *name, uint32_t nslots, uint32_t data_size)
{
	memset(r, 0, sizeof *r);
	r->fd = -1;
	if (nslots < 16 || data_size < 4 * RING_MAX_PACKET || nslots > (1u << 24))
		return -EINVAL;
	uint32_t n = 16;
	while (n < nslots)
		n <<= 1;
	nslots = n;
	size_t size = ring_map_size(nslots, data_size);
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Readers may trust the size: it can never shrink under them. */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct ring_hdr *h = base;
	h->version = RING_VERSION;
	h->writer_pid = (uint32_t)getpid();
	h->nslots = nslots;
	h->data_size = data_size;
	h->hdr_size = sizeof *h;
	h->key_seq = UINT64_MAX;
	for (uint32_t i = 0; i < nslots; i++)
		((struct ring_slot *)(h + 1))[i].seq = UINT64_MAX;
	__atomic_store_n(&h->magic, RING_MAGIC, __ATOMIC_RELEASE);
	r->fd = fd;
	r->map_size = size;
	r->writer = true;
	ring_bind(r, base);
	return 0;
}

int ring_attach(struct ring *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = -1;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < (off_t)sizeof(struct ring_hdr))
		return -EINVAL;
	void *base = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	const struct ring_hdr *h = base;
	/* Accept only a layout ring_create() can make: the header comes from
	 * another process and is not trusted. */
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != RING_MAGIC || h->version != RING_VERSION ||
	    h->hdr_size != sizeof *h || h->nslots < 16 || h->nslots > (1u << 24) ||
	    (h->nslots & (h->nslots - 1)) || h->data_size < 4 * RING_MAX_PACKET ||
	    ring_map_size(h->nslots, h->data_size) != (size_t)size) {
		munmap(base, (size_t)size);
		return -EPROTO;
	}
	r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	r->map_size = (size_t)size;
	ring_bind(r, base);
	return 0;
}

void ring_close(struct ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_size);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof *r);
	r->fd = -1;
}

void ring_set_track(struct ring *r, unsigned track, uint32_t clock_rate, uint32_t ssrc)
{
	if (track >= RING_MAX_TRACKS)
		return;
	r->hdr->tracks[track].clock_rate = clock_rate;
	r->hdr->tracks[track].ssrc = ssrc;
	if (track + 1 > r->hdr->ntracks)
		r->hdr->ntracks = track + 1;
}

uint64_t ring_write(struct ring *r, unsigned track, unsigned flags, int64_t time_us,
		    uint32_t rtp_ts, const void *pkt, size_t len)
{
	struct ring_hdr *h = r->hdr;
	if (len > RING_MAX_PACKET)
		len = RING_MAX_PACKET;
	uint64_t head = h->data_head;
	uint64_t off = head % h->data_size;
	if (off + len > h->data_size)          /* never straddle the end */
		head += h->data_size - off, off = 0;
	uint64_t seq = h->write_seq;
	struct ring_slot *s = &r->slots[seq & (h->nslots - 1)];
	/* Invalidate the slot first so a reader of the old packet sees it go. */
	__atomic_store_n(&s->seq, UINT64_MAX, __ATOMIC_RELEASE);
	/* Publish the new data end before overwriting: readers compare against it. */
	__atomic_store_n(&h->data_head, head + ((len + 7) & ~(size_t)7), __ATOMIC_RELEASE);
	/* Both stores above must be visible before any byte below changes (a
	 * seqlock's write side; a no-op on x86, a barrier on weaker CPUs). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (len)
		memcpy(r->data + off, pkt, len);
	s->pos = head;
	s->time_us = time_us;
	s->rtp_ts = rtp_ts;
	s->len = (uint16_t)len;
	s->track = (uint8_t)track;
	s->flags = (uint8_t)flags;
	__atomic_store_n(&s->seq, seq, __ATOMIC_RELEASE);
	if (track < RING_MAX_TRACKS && !(flags & RING_EOS)) {
		struct ring_track *t = &h->tracks[track];
		t->last_rtp = rtp_ts;
		t->last_us = time_us;
		t->packets++;
		t->octets += len;
	}
	if (flags & RING_KEY)
		__atomic_store_n(&h->key_seq, seq, __ATOMIC_RELEASE);
	__atomic_store_n(&h->write_seq, seq + 1, __ATOMIC_RELEASE);
	return seq;
}

uint64_t ring_head(const struct ring *r)
{
	return __atomic_load_n(&r->hdr->write_seq, __ATOMIC_ACQUIRE);
}

uint64_t ring_join_point(const struct ring *r)
{
	uint64_t key = __atomic_load_n(&r->hdr->key_seq, __ATOMIC_ACQUIRE);
	uint64_t head = ring_head(r);
	if (key == UINT64_MAX || head - key >= r->hdr->nslots)
		return head;
	struct ring_slot s;
	const uint8_t *d;
	if (ring_peek(r, key, &s, &d) != 0)
		return head;
	return key;
}

bool ring_valid(const struct ring *r, uint64_t seq, uint64_t pos)
{
	const struct ring_hdr *h = r->hdr;
	/* The reader's copy of the data must be complete before the re-check
	 * (a seqlock's read side). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	const struct ring_slot *s = &r->slots[seq & (h->nslots - 1)];
	if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
		return false;
	uint64_t data_head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
	return data_head - pos <= h->data_size;
}

int ring_peek(const struct ring *r, uint64_t seq, struct ring_slot *slot, const uint8_t **data)
{
	const struct ring_hdr *h = r->hdr;
	uint64_t head = ring_head(r);
	if (seq >= head)
		return -EAGAIN;
	if (head - seq > h->nslots)
		return -ESTALE;
	const struct ring_slot *s = &r->slots[seq & (h->nslots - 1)];
	if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
		return -ESTALE;
	*slot = *s;
	if (!ring_valid(r, seq, slot->pos) || slot->len > RING_MAX_PACKET)
		return -ESTALE;
	*data = r->data + slot->pos % h->data_size;
	return 0;
}

bool ring_lagging(const struct ring *r, uint64_t seq)
{
	const struct ring_hdr *h = r->hdr;
	uint64_t head = ring_head(r);
	if (seq >= head)
		return false;
	if (head - seq > h->nslots / 2)
		return true;
	const struct ring_slot *s = &r->slots[seq & (h->nslots - 1)];
	if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
		return true;
	uint64_t data_head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
	return data_head - s->pos > h->data_size / 2;
}

uint32_t ring_rtp_at(const struct ring *r, unsigned track, int64_t now_us)
{
	if (track >= RING_MAX_TRACKS)
		return 0;
	const struct ring_track *t = &r->hdr->tracks[track];
	int64_t dt = now_us - t->last_us;
	return t->last_rtp + (uint32_t)(int64_t)((double)dt * t->clock_rate / 1e6);
}
