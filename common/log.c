/* log.c — see log.h. */
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	char role[32];
	char stream[256];
	int level;
	bool enabled;
} log_state = { "rtspd", "", LOG_INFO, true };

static const char *const level_names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL" };

void log_init(const char *role, int level, bool enabled)
{
	snprintf(log_state.role, sizeof log_state.role, "%s", role ? role : "rtspd");
	log_set_level(level);
	log_state.enabled = enabled;
}

void log_set_level(int level)
{
	if (level < LOG_TRACE)
		level = LOG_TRACE;
	if (level > LOG_FATAL)
		level = LOG_FATAL;
	log_state.level = level;
}

int log_get_level(void)
{
	return log_state.level;
}

void log_set_stream(const char *stream)
{
	snprintf(log_state.stream, sizeof log_state.stream, "%s", stream ? stream : "");
}

bool log_enabled(int level)
{
	/* Fatal lines are always written: they explain why the process stops. */
	if (level >= LOG_FATAL)
		return true;
	return log_state.enabled && level >= log_state.level;
}

void log_msgv(int level, const char *stream, const char *client, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d]",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level < 0 ? 0 : level > 5 ? 5 : level],
			 log_state.role, (int)getpid());
	if (!stream || !*stream)
		stream = log_state.stream;
	if (n > 0 && (size_t)n < sizeof line && stream && *stream)
		n += snprintf(line + n, sizeof line - n, " stream=%s", stream);
	if (n > 0 && (size_t)n < sizeof line && client && *client)
		n += snprintf(line + n, sizeof line - n, " client=%s", client);
	if (n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - n, ": ");
	if (n > 0 && (size_t)n < sizeof line)
		n += vsnprintf(line + n, sizeof line - n, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line so lines of different processes never interleave. */
	ssize_t r = write(STDERR_FILENO, line, (size_t)n);
	(void)r;
}

void log_msg(int level, const char *stream, const char *client, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_msgv(level, stream, client, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_msgv(LOG_FATAL, NULL, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
