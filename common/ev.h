/* ev.h — a small epoll event loop: file events and timers.
 *
 * One loop per process. File handlers are kept in an array indexed by fd;
 * the caller owns the fd and must ev_del() it before closing it. Timers are
 * identified by a positive id; a timer callback returns the delay in ms until
 * it runs again, or a negative value to be removed. Callbacks may add and
 * delete any file or timer, including their own.
 */
#ifndef RTSPD_EV_H
#define RTSPD_EV_H

#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;

typedef void (*ev_file_fn)(struct ev_loop *loop, int fd, uint32_t events, void *arg);
typedef int64_t (*ev_timer_fn)(struct ev_loop *loop, long long id, void *arg);

struct ev_loop *ev_create(void);
void ev_destroy(struct ev_loop *loop);

/* events: EPOLLIN | EPOLLOUT | ...; returns 0 or -errno. */
int ev_add(struct ev_loop *loop, int fd, uint32_t events, ev_file_fn fn, void *arg);
int ev_mod(struct ev_loop *loop, int fd, uint32_t events);
int ev_del(struct ev_loop *loop, int fd);
uint32_t ev_events(struct ev_loop *loop, int fd);

/* Returns the timer id (> 0) or -errno. */
long long ev_timer_add(struct ev_loop *loop, int64_t delay_ms, ev_timer_fn fn, void *arg);
int ev_timer_del(struct ev_loop *loop, long long id);

/* Runs until ev_stop(). */
void ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop);

/* Monotonic clock. */
int64_t ev_now_us(void);
int64_t ev_now_ms(void);

#endif
