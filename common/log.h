/* log.h — one line per event, with the process role, stream and client.
 *
 * Every process (master and workers) logs through this module. Lines go to
 * stderr as "TIME LEVEL role[pid] stream=S client=C: message". The level can
 * be changed at run time (log_set_level). Nothing here allocates per line.
 * fatal() is for start-up only: it logs and exits(1).
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

/* role: "master", "worker", "rtspctl"... copied. */
void log_init(const char *role, int level, bool enabled);
void log_set_level(int level);
int log_get_level(void);
void log_set_stream(const char *stream);  /* default stream tag of this process, copied */
bool log_enabled(int level);

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
