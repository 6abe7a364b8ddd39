/* ctl.c — see ctl.h. */
#include "proto/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct ctl_command ctl_commands[CTL_CMD_MAX] = {
	{ CTL_STATUS, "status", "[--json]",
	  "streams (path, source, worker pid, state, uptime, restarts, bit rates, viewers) and sessions", 0, 1 },
	{ CTL_RELOAD, "reload", "",
	  "re-read the configuration and apply what changed; a bad one is refused, the running one kept", 0, 0 },
	{ CTL_KICK, "kick", "SESSION", "end one session (RTCP BYE, connection closed)", 1, 1 },
	{ CTL_RESTART, "restart", "STREAM",
	  "restart a stream's worker (its viewers are disconnected; STREAM as status shows it)", 1, 1 },
	{ CTL_STOP, "stop", "", "stop the server gracefully (BYE to every viewer)", 0, 0 },
	{ CTL_HELP, "help", "", "this list", 0, 0 },
};

int ctl_parse_request(const char *buf, size_t len, const char *words[CTL_MAX_WORDS])
{
	if (len == 0 || len > CTL_MAX_REQUEST || buf[len - 1] != 0)
		return -EINVAL;
	int n = 0;
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch) {
			if (ch < 0x21 || ch > 0x7e)
				return -EINVAL;
			continue;
		}
		if (i == start || n == CTL_MAX_WORDS)
			return -EINVAL;
		words[n++] = buf + start;
		start = i + 1;
	}
	return n;
}

const struct ctl_command *ctl_find(const char *const *words, int nwords, char *err, size_t errlen)
{
	for (int i = 0; i < CTL_CMD_MAX; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		if (strcmp(words[0], c->name))
			continue;
		int nargs = nwords - 1;
		if (nargs < c->min_args || nargs > c->max_args) {
			snprintf(err, errlen, "usage: %s%s%s", c->name, c->args[0] ? " " : "", c->args);
			return NULL;
		}
		return c;
	}
	snprintf(err, errlen, "unknown command '%.64s' (try: help)", words[0]);
	return NULL;
}

int ctl_format_help(char *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < CTL_CMD_MAX; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		char head[64];
		snprintf(head, sizeof head, "%s %s", c->name, c->args);
		int n = snprintf(buf + off, off < len ? len - off : 0, "  %-18s %s\n", head, c->help);
		if (n < 0)
			return -EINVAL;
		off += (size_t)n;
	}
	return off < len ? (int)off : -ENOSPC;
}
