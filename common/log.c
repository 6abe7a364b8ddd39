/* log.c — see log.h. */
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* libsystemd's public symbol, declared here rather than through
 * <systemd/sd-journal.h>: that header includes <syslog.h>, whose LOG_INFO,
 * LOG_DEBUG ... macros would rename our level constants. sd_journal_sendv
 * (not sd_journal_send) because it takes ready fields: sd_journal_send
 * mallocs every field of every line. */
int sd_journal_sendv(const struct iovec *iov, int n);

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* Longest message and longest stderr line; longer ones are cut. Small
 * enough that a journal entry always fits one datagram (libsystemd would
 * otherwise pass it in a memfd). */
#define LOG_LINE_MAX 2048

static struct {
	char role[32];
	char stream[256];
	int level;
	bool enabled;
	bool journal;           /* lines go to journald */
	bool journal_failed;    /* no socket, or a send failed: stderr for good, whatever log_init says later */
	bool is_worker;         /* role "worker": WORKER_PID is this process by default */
} log_state = { "rtspd", "", LOG_INFO, true, false, false, false };

static const char *const level_names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL" };

static int clamp_level(int level)
{
	return level < LOG_TRACE ? LOG_TRACE : level > LOG_FATAL ? LOG_FATAL : level;
}

int log_priority(int level)
{
	/* syslog's: 7 debug, 6 info, 4 warning, 3 err, 2 crit. FATAL is crit,
	 * not emerg/alert: one process stops, the system is fine. */
	static const int prio[] = { 7, 7, 6, 4, 3, 2 };
	return prio[clamp_level(level)];
}

/* Replaces control bytes so that a message stays one line on stderr and
 * one plain field in the journal: blanks become spaces, others '?'. */
static void sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
		else if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

/* Writes one stderr line: "TIME LEVEL role[pid] tags: msg". msg is
 * already sanitized; the tags are cleaned here. */
static void write_stderr(int level, const char *stream, const char *client, const char *session,
			 int worker_pid, const char *msg)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d]",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[clamp_level(level)],
			 log_state.role, (int)getpid());
	int tags_at = n;
	if (n > 0 && (size_t)n < sizeof line && stream && *stream)
		n += snprintf(line + n, sizeof line - n, " stream=%s", stream);
	if (n > 0 && (size_t)n < sizeof line && client && *client)
		n += snprintf(line + n, sizeof line - n, " client=%s", client);
	if (n > 0 && (size_t)n < sizeof line && session && *session)
		n += snprintf(line + n, sizeof line - n, " session=%s", session);
	if (n > 0 && (size_t)n < sizeof line && worker_pid > 0)
		n += snprintf(line + n, sizeof line - n, " worker=%d", worker_pid);
	if (tags_at > 0 && (size_t)tags_at < sizeof line)
		sanitize(line + tags_at);
	if (n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - n, ": %s", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line so lines of different processes never interleave. */
	ssize_t r = write(STDERR_FILENO, line, (size_t)n);
	(void)r;
}

/* journald is gone: stderr from now on, and one line there to say so.
 * Acts once per process (the first failure wins the exchange), however
 * many lines fail at the same time. */
static void journal_give_up(const char *why)
{
	if (__atomic_exchange_n(&log_state.journal_failed, true, __ATOMIC_ACQ_REL))
		return;
	__atomic_store_n(&log_state.journal, false, __ATOMIC_RELEASE);
	if (!log_state.enabled)
		return;
	char msg[256];
	snprintf(msg, sizeof msg, "journald: %s; logging to stderr from now on", why);
	sanitize(msg);
	write_stderr(LOG_WARN, NULL, NULL, NULL, 0, msg);
}

/* One "KEY=value" field into buf; false when there is nothing to say. */
static bool field(struct iovec *iov, char *buf, size_t size, const char *key, const char *value)
{
	if (!value || !*value)
		return false;
	int n = snprintf(buf, size, "%s=%s", key, value);
	if (n < 0)
		return false;
	sanitize(buf);
	iov->iov_base = buf;
	iov->iov_len = (size_t)n < size ? (size_t)n : size - 1;
	return true;
}

/* Sends one entry; -errno when journald did not take it. */
static int write_journal(int level, const char *stream, const char *client, const char *session,
			 int worker_pid, char *message, size_t message_len)
{
	static char ident[] = "SYSLOG_IDENTIFIER=rtspd";
	char prio[16], role[48], stream_f[8 + 256], client_f[8 + 128], session_f[9 + 128], pid_f[32];
	char pid_s[16];
	struct iovec iov[8];
	int n = 0;
	iov[n++] = (struct iovec){ message, message_len };
	snprintf(prio, sizeof prio, "PRIORITY=%d", log_priority(level));
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ ident, sizeof ident - 1 };
	n += field(&iov[n], role, sizeof role, "RTSPD_ROLE", log_state.role);
	n += field(&iov[n], stream_f, sizeof stream_f, "STREAM", stream);
	n += field(&iov[n], client_f, sizeof client_f, "CLIENT", client);
	n += field(&iov[n], session_f, sizeof session_f, "SESSION", session);
	if (worker_pid > 0) {
		snprintf(pid_s, sizeof pid_s, "%d", worker_pid);
		n += field(&iov[n], pid_f, sizeof pid_f, "WORKER_PID", pid_s);
	}
	return sd_journal_sendv(iov, n);
}

void log_taggedv(int level, const struct log_tags *tags, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	static const struct log_tags none;
	if (!tags)
		tags = &none;
	const char *stream = tags->stream && *tags->stream ? tags->stream : log_state.stream;
	/* The message after a "MESSAGE=" the journal wants in front of it, so
	 * that one buffer serves both destinations. */
	char buf[sizeof "MESSAGE=" - 1 + LOG_LINE_MAX];
	const size_t pre = sizeof "MESSAGE=" - 1;
	memcpy(buf, "MESSAGE=", pre);
	int len = vsnprintf(buf + pre, sizeof buf - pre, fmt, ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof buf - pre)
		len = (int)(sizeof buf - pre - 1);
	sanitize(buf + pre);
	if (__atomic_load_n(&log_state.journal, __ATOMIC_ACQUIRE)) {
		int pid = tags->worker_pid > 0 ? tags->worker_pid : log_state.is_worker ? (int)getpid() : 0;
		int r = write_journal(level, stream, tags->client, tags->session, pid, buf, pre + (size_t)len);
		if (r >= 0)
			return;
		journal_give_up(strerror(-r));
	}
	write_stderr(level, stream, tags->client, tags->session, tags->worker_pid, buf + pre);
}

void log_tagged(int level, const struct log_tags *tags, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_taggedv(level, tags, fmt, ap);
	va_end(ap);
}

void log_msgv(int level, const char *stream, const char *client, const char *fmt, va_list ap)
{
	struct log_tags t = { .stream = stream, .client = client };
	log_taggedv(level, &t, fmt, ap);
}

void log_msg(int level, const char *stream, const char *client, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_msgv(level, stream, client, fmt, ap);
	va_end(ap);
}

/* Whether systemd connected our stderr to the journal: it then sets
 * JOURNAL_STREAM to "DEV:INODE" of that stream (systemd.exec(5)). A child
 * whose stderr was redirected inherits the variable but not the stream,
 * hence the comparison with fd 2. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	if (!e || !*e)
		return false;
	char *end;
	errno = 0;
	uintmax_t dev = strtoumax(e, &end, 10);
	if (errno || end == e || *end != ':')
		return false;
	const char *ino_s = end + 1;
	uintmax_t ino = strtoumax(ino_s, &end, 10);
	if (errno || end == ino_s || *end)
		return false;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

/* Picks the destination. A missing journal socket is checked here because
 * libsystemd drops entries silently when it is absent (ENOENT counts as
 * success there), so a send would never tell us. */
static void choose_target(void)
{
	const char *t = getenv("RTSPD_LOG_TARGET");
	bool journal;
	const char *bad = NULL;
	if (t && !strcmp(t, "journal"))
		journal = true;
	else if (t && !strcmp(t, "stderr"))
		journal = false;
	else {
		if (t && *t && strcmp(t, "auto"))
			bad = t;
		journal = stderr_is_journal();
	}
	/* Once: a worker calls log_init twice, and every worker would repeat it. */
	static bool said_bad;
	if (bad && log_state.enabled && !said_bad) {
		said_bad = true;
		char msg[128];
		snprintf(msg, sizeof msg, "RTSPD_LOG_TARGET=%.40s is not journal, stderr or auto: ignored", bad);
		sanitize(msg);
		write_stderr(LOG_WARN, NULL, NULL, NULL, 0, msg);
	}
	if (!journal) {
		__atomic_store_n(&log_state.journal, false, __ATOMIC_RELEASE);
		return;
	}
	if (__atomic_load_n(&log_state.journal_failed, __ATOMIC_ACQUIRE))
		return;
	struct stat st;
	const char *err = stat(JOURNAL_SOCKET, &st) < 0 ? strerror(errno) :
			  !S_ISSOCK(st.st_mode) ? "not a socket" : NULL;
	if (err) {
		char why[128];
		snprintf(why, sizeof why, "%s: %s", JOURNAL_SOCKET, err);
		journal_give_up(why);
		return;
	}
	__atomic_store_n(&log_state.journal, true, __ATOMIC_RELEASE);
}

void log_init(const char *role, int level, bool enabled)
{
	snprintf(log_state.role, sizeof log_state.role, "%s", role ? role : "rtspd");
	log_state.is_worker = !strcmp(log_state.role, "worker");
	log_set_level(level);
	log_state.enabled = enabled;
	choose_target();
}

bool log_to_journal(void)
{
	return __atomic_load_n(&log_state.journal, __ATOMIC_ACQUIRE);
}

void log_set_level(int level)
{
	log_state.level = clamp_level(level);
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

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_msgv(LOG_FATAL, NULL, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
