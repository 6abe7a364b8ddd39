/* ev.c — see ev.h. Timers live in an unsorted array: a process has a handful
 * (pacing, housekeeping), never one per session, so a linear scan is cheapest. */
#include "common/ev.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ev_file {
	ev_file_fn fn;
	void *arg;
	uint32_t events;
	bool active;
};

struct ev_timer {
	long long id;
	int64_t when_us;
	ev_timer_fn fn;
	void *arg;
};

struct ev_loop {
	int epfd;
	struct ev_file *files;
	int nfiles;
	struct ev_timer *timers;
	int ntimers, captimers;
	long long next_timer_id;
	bool stop;
};

int64_t ev_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ev_now_ms(void)
{
	return ev_now_us() / 1000;
}

struct ev_loop *ev_create(void)
{
	struct ev_loop *loop = calloc(1, sizeof *loop);
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

void ev_destroy(struct ev_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->files);
	free(loop->timers);
	free(loop);
}

static int ev_reserve(struct ev_loop *loop, int fd)
{
	if (fd < loop->nfiles)
		return 0;
	int n = loop->nfiles ? loop->nfiles : 64;
	while (n <= fd)
		n *= 2;
	struct ev_file *f = realloc(loop->files, (size_t)n * sizeof *f);
	if (!f)
		return -ENOMEM;
	memset(f + loop->nfiles, 0, (size_t)(n - loop->nfiles) * sizeof *f);
	loop->files = f;
	loop->nfiles = n;
	return 0;
}

int ev_add(struct ev_loop *loop, int fd, uint32_t events, ev_file_fn fn, void *arg)
{
	if (fd < 0)
		return -EBADF;
	int r = ev_reserve(loop, fd);
	if (r)
		return r;
	struct epoll_event ee = { .events = events, .data.fd = fd };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -errno;
	loop->files[fd] = (struct ev_file){ .fn = fn, .arg = arg, .events = events, .active = true };
	return 0;
}

int ev_mod(struct ev_loop *loop, int fd, uint32_t events)
{
	if (fd < 0 || fd >= loop->nfiles || !loop->files[fd].active)
		return -EBADF;
	if (loop->files[fd].events == events)
		return 0;
	struct epoll_event ee = { .events = events, .data.fd = fd };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -errno;
	loop->files[fd].events = events;
	return 0;
}

uint32_t ev_events(struct ev_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nfiles || !loop->files[fd].active)
		return 0;
	return loop->files[fd].events;
}

int ev_del(struct ev_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nfiles || !loop->files[fd].active)
		return -EBADF;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->files[fd].active = false;
	loop->files[fd].fn = NULL;
	return 0;
}

long long ev_timer_add(struct ev_loop *loop, int64_t delay_ms, ev_timer_fn fn, void *arg)
{
	if (loop->ntimers == loop->captimers) {
		int n = loop->captimers ? loop->captimers * 2 : 8;
		struct ev_timer *t = realloc(loop->timers, (size_t)n * sizeof *t);
		if (!t)
			return -ENOMEM;
		loop->timers = t;
		loop->captimers = n;
	}
	long long id = ++loop->next_timer_id;
	loop->timers[loop->ntimers++] = (struct ev_timer){
		.id = id, .when_us = ev_now_us() + delay_ms * 1000, .fn = fn, .arg = arg,
	};
	return id;
}

int ev_timer_del(struct ev_loop *loop, long long id)
{
	for (int i = 0; i < loop->ntimers; i++) {
		if (loop->timers[i].id == id) {
			loop->timers[i] = loop->timers[--loop->ntimers];
			return 0;
		}
	}
	return -ENOENT;
}

void ev_stop(struct ev_loop *loop)
{
	loop->stop = true;
}

static int ev_next_timeout_ms(struct ev_loop *loop)
{
	if (!loop->ntimers)
		return 1000;
	int64_t now = ev_now_us(), soonest = INT64_MAX;
	for (int i = 0; i < loop->ntimers; i++)
		if (loop->timers[i].when_us < soonest)
			soonest = loop->timers[i].when_us;
	int64_t d = soonest - now;
	if (d <= 0)
		return 0;
	d = (d + 999) / 1000;
	return d > 1000 ? 1000 : (int)d;
}

static void ev_run_timers(struct ev_loop *loop)
{
	int64_t now = ev_now_us();
	/* Collect the due ids first: callbacks may add or delete timers. */
	long long due[64];
	int ndue = 0;
	for (int i = 0; i < loop->ntimers && ndue < 64; i++)
		if (loop->timers[i].when_us <= now)
			due[ndue++] = loop->timers[i].id;
	for (int k = 0; k < ndue; k++) {
		int i;
		for (i = 0; i < loop->ntimers; i++)
			if (loop->timers[i].id == due[k])
				break;
		if (i == loop->ntimers)
			continue;
		struct ev_timer t = loop->timers[i];
		int64_t again = t.fn(loop, t.id, t.arg);
		/* The callback may have moved the array around: find it again. */
		for (i = 0; i < loop->ntimers; i++)
			if (loop->timers[i].id == t.id)
				break;
		if (i == loop->ntimers)
			continue;
		if (again < 0)
			loop->timers[i] = loop->timers[--loop->ntimers];
		else
			loop->timers[i].when_us = ev_now_us() + again * 1000;
	}
}

void ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[256];
	loop->stop = false;
	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, evs, 256, ev_next_timeout_ms(loop));
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd < 0 || fd >= loop->nfiles || !loop->files[fd].active)
				continue;
			struct ev_file *f = &loop->files[fd];
			f->fn(loop, fd, evs[i].events, f->arg);
			if (loop->stop)
				break;
		}
		ev_run_timers(loop);
	}
}
