/* service.c — the master's side of systemd's service protocol (sd_notify).
 *
 * READY=1 once every listener and the control socket are open; STATUS=
 * with streams, viewers and bit rates, refreshed when it changes;
 * WATCHDOG=1 from a timer of the master's own loop (so a master stuck
 * anywhere stops petting it and systemd restarts the service);
 * RELOADING=1 + MONOTONIC_USEC= around a reload; STOPPING=1 on the way out.
 * Without NOTIFY_SOCKET every call is a no-op. Workers never notify: the
 * master takes NOTIFY_SOCKET and the watchdog variables out of their
 * environment (supervisor.c), matching NotifyAccess=main.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "master/master.h"

static int64_t service_watchdog_timer(struct ev_loop *loop, long long id, void *arg)
{
	struct master *m = arg;
	(void)loop;
	(void)id;
	sd_notify(0, "WATCHDOG=1");
	/* Four times per period: well within the half period systemd advises. */
	int64_t ms = (int64_t)(m->watchdog_usec / 4000);
	return ms < 10 ? 10 : ms;
}

void service_init(struct master *m)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	m->notify = ns && *ns;
	uint64_t usec = 0;
	if (m->notify && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		m->watchdog_usec = usec;
		log_info("systemd watchdog: every %.2f s", (double)usec / 4e6);
		ev_timer_add(m->loop, 0, service_watchdog_timer, m);
	}
}

void service_status_text(struct master *m, char *buf, size_t len)
{
	int streams = 0;
	uint32_t viewers = 0;
	uint64_t in = 0, out = 0;
	for (struct proc *p = m->procs; p; p = p->next) {
		streams += p->stream != NULL;
		viewers += p->status.sessions;
		in += p->bitrate_in;
		out += p->bitrate_out;
	}
	snprintf(buf, len, "%d stream%s, %u viewer%s, in %.1f Mbit/s, out %.1f Mbit/s", streams,
		 streams == 1 ? "" : "s", viewers, viewers == 1 ? "" : "s", (double)in / 1e6, (double)out / 1e6);
}

void service_status(struct master *m)
{
	if (!m->notify)
		return;
	char text[sizeof m->last_status];
	service_status_text(m, text, sizeof text);
	if (!strcmp(text, m->last_status))
		return;
	memcpy(m->last_status, text, sizeof text);
	sd_notifyf(0, "STATUS=%s", text);
}

void service_ready(struct master *m)
{
	if (!m->notify)
		return;
	char text[sizeof m->last_status];
	service_status_text(m, text, sizeof text);
	memcpy(m->last_status, text, sizeof text);
	sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%d", text, (int)getpid());
}

void service_reloading(struct master *m)
{
	if (!m->notify)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	m->last_status[0] = 0;
}

void service_stopping(struct master *m)
{
	if (!m->notify)
		return;
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
