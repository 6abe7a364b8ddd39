/* fflog.c — FFmpeg's log lines go through our logger: with our format and
 * level, and a message FFmpeg repeats for every packet (a codec it cannot
 * packetize, a damaged file) is written once with a count, not thousands
 * of times. */
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "common/log.h"
#include "worker/fflog.h"

static struct {
	char last[512];
	unsigned repeats;
	int last_level;
} fflog;

static int fflog_level(int av_level)
{
	if (av_level <= AV_LOG_ERROR)
		return LOG_ERROR;
	if (av_level <= AV_LOG_WARNING)
		return LOG_WARN;
	if (av_level <= AV_LOG_INFO)
		return LOG_DEBUG;
	return LOG_TRACE;
}

static void fflog_callback(void *avcl, int av_level, const char *fmt, va_list ap)
{
	int level = fflog_level(av_level);
	if (!log_enabled(level))
		return;
	char line[512];
	int print_prefix = 1;
	av_log_format_line2(avcl, av_level, fmt, ap, line, sizeof line, &print_prefix);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	if (!n)
		return;
	if (!strcmp(line, fflog.last)) {
		/* Say so at 10, 100, 1000 ... repeats, so a flood stays visible but small. */
		fflog.repeats++;
		unsigned r = fflog.repeats;
		while (r >= 10 && r % 10 == 0)
			r /= 10;
		if (r == 1 && fflog.repeats >= 10)
			log_msg(level, NULL, NULL, "FFmpeg: %s (repeated %u times)", line, fflog.repeats);
		return;
	}
	snprintf(fflog.last, sizeof fflog.last, "%s", line);
	fflog.repeats = 0;
	log_msg(level, NULL, NULL, "FFmpeg: %s", line);
}

void fflog_init(void)
{
	av_log_set_level(log_enabled(LOG_TRACE) ? AV_LOG_DEBUG : log_enabled(LOG_DEBUG) ? AV_LOG_INFO : AV_LOG_WARNING);
	av_log_set_callback(fflog_callback);
}
