/* log.h — one line per event, with the process role, stream and client.
 *
 * Every process (master and workers) logs through this module. Lines go to
 * stderr as "TIME LEVEL role[pid] stream=S client=C session=ID worker=PID: message"
 * (each tag only when known), or, under systemd, straight to journald with
 * the tags as fields (docs/LOGGING.md). The level can be changed at run time
 * (log_set_level). Nothing here allocates per line. fatal() is for start-up
 * only: it logs and exits(1).
 */
#ifndef RTSPD_LOG_H
#define RTSPD_LOG_H

#include <stdbool.h>
#include <stdarg.h>

enum log_level {
	LOG_TRACE = 0,
	LOG_DEBUG = 1,
	LOG_INFO = 2,
	LOG_WARN = 3,
	LOG_ERROR = 4,
	LOG_FATAL = 5,
};

/* What a line is about. Every member is optional: NULL or "" (0 for
 * worker_pid) leaves the tag out. stream falls back to the process default
 * (log_set_stream); in journald mode a process whose role is "worker" tags
 * its own pid as WORKER_PID unless worker_pid says otherwise. */
struct log_tags {
	const char *stream;
	const char *client;
	const char *session;
	int worker_pid;
};

/* role: "master", "worker", "rtspctl"... copied. Also decides, once for the
 * process, where lines go: journald when RTSPD_LOG_TARGET=journal, or when
 * it is unset (or "auto") and JOURNAL_STREAM names fd 2 (systemd connected
 * stderr to the journal); stderr otherwise. */
void log_init(const char *role, int level, bool enabled);
void log_set_level(int level);
int log_get_level(void);
void log_set_stream(const char *stream);  /* default stream tag of this process, copied */
bool log_enabled(int level);

/* Whether lines go to journald now (false after a failed send: see log.c). */
bool log_to_journal(void);
/* The syslog priority of a level (LOG_INFO -> 6 ...), for journald's PRIORITY=. */
int log_priority(int level);

/* tags may be NULL. */
void log_taggedv(int level, const struct log_tags *tags, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
void log_tagged(int level, const struct log_tags *tags, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void log_msgv(int level, const char *stream, const char *client, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
void log_msg(int level, const char *stream, const char *client, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_trace(...) log_msg(LOG_TRACE, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, NULL, NULL, __VA_ARGS__)

/* Start-up only: log at FATAL and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
