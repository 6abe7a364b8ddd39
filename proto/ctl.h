/* ctl.h — the control protocol between rtspctl and the master.
 *
 * rtspctl connects to the master's control socket (AF_UNIX, SOCK_SEQPACKET,
 * `<control_socket>`), sends one IPC_CTL_REQUEST whose payload is the
 * command's words, each NUL-terminated ("status\0--json\0"), and reads
 * IPC_CTL_OUTPUT messages (text for stdout) until one IPC_CTL_DONE (exit
 * code + text for stderr). Every message is framed as on the master/worker
 * channel (common/ipc.h): {type, version, len, peer, pid}; a request with
 * another IPC_VERSION is answered with an error naming both versions.
 *
 * The command table below is the one list of commands: rtspctl prints its
 * help from it and checks argument counts with it; the master looks up its
 * handler for each entry by id. Pure data and functions, no I/O.
 */
#ifndef RTSPD_CTL_H
#define RTSPD_CTL_H

#include <stddef.h>

enum ctl_cmd {
	CTL_STATUS,
	CTL_RELOAD,
	CTL_KICK,
	CTL_RESTART,
	CTL_STOP,
	CTL_HELP,
	CTL_CMD_MAX
};

struct ctl_command {
	enum ctl_cmd id;
	const char *name;
	const char *args;       /* usage of the arguments, "" for none */
	const char *help;       /* one line */
	int min_args, max_args; /* words after the name */
};

extern const struct ctl_command ctl_commands[CTL_CMD_MAX];

#define CTL_MAX_WORDS 8
#define CTL_MAX_REQUEST 4096

/* Splits a request payload into words. Every word must be NUL-terminated,
 * non-empty, printable ASCII; at most CTL_MAX_WORDS words. The words point
 * into buf. Returns the number of words (>= 1), or -EINVAL. */
int ctl_parse_request(const char *buf, size_t len, const char *words[CTL_MAX_WORDS]);

/* The command named words[0] with an argument count it accepts: the table
 * entry, or NULL with a reason in err. */
const struct ctl_command *ctl_find(const char *const *words, int nwords, char *err, size_t errlen);

/* Writes "name args" padded, then the help, one line per command. */
int ctl_format_help(char *buf, size_t len);

#endif
