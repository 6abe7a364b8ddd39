/* rtspctl — controls a running rtspd through its control socket.
 *
 *   rtspctl [-s SOCKET | -c CONFIG] COMMAND [ARGS]
 *
 * The socket is found, in this order: -s PATH; the <control_socket> of the
 * configuration given with -c; that of /etc/rtspd/rtspserver.cfg, then of
 * ./rtspserver.cfg (the files rtspd itself reads by default); else
 * /run/rtspd/control.sock. The protocol is in proto/ctl.h: one request, the
 * answer's text copied to stdout, its error text to stderr.
 *
 * Exit status: 0 done; 1 the server refused or the command failed; 2 usage;
 * 3 no server answers on the socket; 4 not allowed to use the socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ipc.h"
#include "proto/ctl.h"

#define EXIT_UNREACHABLE 3
#define EXIT_DENIED 4
#define ANSWER_TIMEOUT_MS 60000
#define DEFAULT_SOCKET "/run/rtspd/control.sock"

static void usage(FILE *f)
{
	char help[2048];
	if (ctl_format_help(help, sizeof help) < 0)
		help[0] = 0;
	fprintf(f,
		"usage: rtspctl [-s SOCKET | -c CONFIG] COMMAND [ARGS]\n"
		"       rtspctl --version\n"
		"  -s SOCKET  the server's control socket\n"
		"  -c CONFIG  the server's configuration file (its <control_socket> is used)\n"
		"             default: /etc/rtspd/rtspserver.cfg, then ./rtspserver.cfg, then %s\n"
		"commands:\n%s"
		"exit status: 0 done, 1 refused or failed, 2 usage, 3 no server on the socket,\n"
		"             4 not allowed to use the socket\n",
		DEFAULT_SOCKET, help);
}

static int socket_from_config(const char *path, char *out, size_t len)
{
	struct rtspd_config cfg;
	char err[1024];
	if (config_load(path, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "rtspctl: %s\n", err);
		return -1;
	}
	snprintf(out, len, "%s", cfg.control_socket);
	config_free(&cfg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *sock_path = NULL, *config_path = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--version")) {
			printf("rtspctl %s\n", RTSPD_VERSION);
			return 0;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if ((!strcmp(a, "-s") || !strcmp(a, "-c")) && i + 1 < argc) {
			if (a[1] == 's')
				sock_path = argv[++i];
			else
				config_path = argv[++i];
			continue;
		}
		if (!strcmp(a, "--json"))
			break;   /* "rtspctl --json status" is read as "status --json" below */
		fprintf(stderr, "rtspctl: unknown option %s\n", a);
		usage(stderr);
		return 2;
	}
	/* The command's words, with a leading --json moved after the command. */
	const char *words[CTL_MAX_WORDS];
	int nwords = 0;
	bool json_first = i < argc && !strcmp(argv[i], "--json");
	if (json_first)
		i++;
	for (; i < argc && nwords < CTL_MAX_WORDS - 1; i++)
		words[nwords++] = argv[i];
	if (i < argc || nwords == 0) {
		usage(stderr);
		return 2;
	}
	if (json_first)
		words[nwords++] = "--json";
	char err[256];
	const struct ctl_command *cmd = ctl_find(words, nwords, err, sizeof err);
	if (!cmd) {
		fprintf(stderr, "rtspctl: %s\n", err);
		return 2;
	}
	if (cmd->id == CTL_HELP) {
		usage(stdout);
		return 0;
	}

	char path[CFG_PATH];
	if (sock_path) {
		snprintf(path, sizeof path, "%s", sock_path);
	} else if (config_path) {
		if (socket_from_config(config_path, path, sizeof path) < 0)
			return 2;
	} else if (access("/etc/rtspd/rtspserver.cfg", F_OK) == 0) {
		if (socket_from_config("/etc/rtspd/rtspserver.cfg", path, sizeof path) < 0)
			return 2;
	} else if (access("rtspserver.cfg", F_OK) == 0) {
		if (socket_from_config("rtspserver.cfg", path, sizeof path) < 0)
			return 2;
	} else {
		snprintf(path, sizeof path, "%s", DEFAULT_SOCKET);
	}

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "rtspctl: %s: path too long for a socket\n", path);
		return 2;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "rtspctl: %s: permission denied (root, the server's user or its group only)\n",
				path);
			return EXIT_DENIED;
		}
		fprintf(stderr, "rtspctl: no rtspd answers on %s (%s): is the server running? (-s or -c pick another)\n",
			path, strerror(e));
		return EXIT_UNREACHABLE;
	}

	char req[CTL_MAX_REQUEST];
	size_t len = 0;
	for (int w = 0; w < nwords; w++) {
		size_t l = strlen(words[w]) + 1;
		if (len + l > sizeof req) {
			fprintf(stderr, "rtspctl: command too long\n");
			return 2;
		}
		memcpy(req + len, words[w], l);
		len += l;
	}
	int e = ipc_send(fd, IPC_CTL_REQUEST, 0, req, len, -1);
	if (e < 0) {
		fprintf(stderr, "rtspctl: %s: %s\n", path, strerror(-e));
		return EXIT_UNREACHABLE;
	}
	static uint8_t buf[IPC_MAX_PAYLOAD + 1];
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, ANSWER_TIMEOUT_MS);
		if (pr == 0) {
			fprintf(stderr, "rtspctl: no answer from %s within %d s\n", path, ANSWER_TIMEOUT_MS / 1000);
			return 1;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		struct ipc_hdr hdr;
		int rfd = -1;
		ssize_t n = ipc_recv(fd, &hdr, buf, IPC_MAX_PAYLOAD, &rfd);
		if (rfd >= 0)
			close(rfd);
		if (n == -EAGAIN)
			continue;
		if (n == -EPROTO && hdr.version != IPC_VERSION) {
			fprintf(stderr, "rtspctl: the server speaks protocol version %u, this rtspctl %d: use the rtspctl "
					"of the same release\n", hdr.version, IPC_VERSION);
			return 1;
		}
		if (n < 0) {
			fprintf(stderr, "rtspctl: the server closed the connection before answering (%s)\n",
				strerror((int)-n));
			return 1;
		}
		if (hdr.type == IPC_CTL_OUTPUT) {
			fwrite(buf, 1, (size_t)n, stdout);
			continue;
		}
		if (hdr.type == IPC_CTL_DONE && (size_t)n >= sizeof(struct ipc_ctl_done)) {
			struct ipc_ctl_done d;
			memcpy(&d, buf, sizeof d);
			size_t tl = (size_t)n - sizeof d;
			if (tl) {
				buf[n] = 0;
				const char *text = (const char *)buf + sizeof d;
				fprintf(stderr, "rtspctl: %s%s", text, text[tl - 1] == '\n' ? "" : "\n");
			}
			fflush(stdout);
			close(fd);
			return d.exit_code;
		}
		fprintf(stderr, "rtspctl: unexpected %s message from the server\n", ipc_type_name(hdr.type));
		return 1;
	}
}
