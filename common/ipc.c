/* ipc.c — see ipc.h. */
#include "common/ipc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *const ipc_names[IPC_TYPE_MAX] = {
	[IPC_NONE] = "NONE",
	[IPC_WORKER_CONFIG] = "WORKER_CONFIG",
	[IPC_CLIENT] = "CLIENT",
	[IPC_SHUTDOWN] = "SHUTDOWN",
	[IPC_LOG_LEVEL] = "LOG_LEVEL",
	[IPC_SESSIONS_QUERY] = "SESSIONS_QUERY",
	[IPC_KICK] = "KICK",
	[IPC_READY] = "READY",
	[IPC_STATUS] = "STATUS",
	[IPC_SOURCE_ERROR] = "SOURCE_ERROR",
	[IPC_SESSIONS] = "SESSIONS",
	[IPC_KICK_RESULT] = "KICK_RESULT",
	[IPC_CTL_REQUEST] = "CTL_REQUEST",
	[IPC_CTL_OUTPUT] = "CTL_OUTPUT",
	[IPC_CTL_DONE] = "CTL_DONE",
	[IPC_TLS_CONFIG] = "TLS_CONFIG",
	[IPC_TLS_CONN] = "TLS_CONN",
	[IPC_TLS_PLAIN] = "TLS_PLAIN",
	[IPC_TALK_ACQUIRE] = "TALK_ACQUIRE",
	[IPC_TALK_RESULT] = "TALK_RESULT",
	[IPC_TALK_START] = "TALK_START",
	[IPC_TALK_READY] = "TALK_READY",
	[IPC_TALK_ERROR] = "TALK_ERROR",
	[IPC_TALK_STATUS] = "TALK_STATUS",
	[IPC_TALK_RELEASE] = "TALK_RELEASE",
};

const char *ipc_type_name(uint16_t type)
{
	if (type < IPC_TYPE_MAX && ipc_names[type])
		return ipc_names[type];
	return "UNKNOWN";
}

int ipc_send(int sock, uint16_t type, uint32_t peer, const void *payload, size_t len, int fd)
{
	if (len > IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	struct ipc_hdr hdr = {
		.type = type, .version = IPC_VERSION, .len = (uint32_t)len, .peer = peer,
		.pid = (uint32_t)getpid(),
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof hdr },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	if (fd >= 0) {
		memset(&ctl, 0, sizeof ctl);
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof hdr + len)
		return -EIO;
	return 0;
}

ssize_t ipc_recv(int sock, struct ipc_hdr *hdr, void *payload, size_t cap, int *fd)
{
	*fd = -1;
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof *hdr },
		{ .iov_base = payload, .iov_len = cap },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {
		.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf,
	};
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	/* Take every fd that arrived so none leaks, even from a bad message. */
	int nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
			if (nfds++ == 0)
				*fd = f;
			else
				close(f);
		}
	}
	bool bad = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds > 1 ||
		   (size_t)n < sizeof *hdr || hdr->version != IPC_VERSION ||
		   (size_t)n - sizeof *hdr != hdr->len;
	if (bad) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return (ssize_t)hdr->len;
}
