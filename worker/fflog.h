/* fflog.h — route FFmpeg's av_log through common/log (see fflog.c). */
#ifndef RTSPD_FFLOG_H
#define RTSPD_FFLOG_H

/* Call after log_init(); again when the level changes. */
void fflog_init(void);

#endif
