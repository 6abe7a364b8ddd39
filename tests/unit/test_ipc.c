/* test_ipc.c — the master/worker message channel (common/ipc.c): framing,
 * fd passing, and the checks a reader makes on what arrives. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/ipc.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

static void test_roundtrip_with_fd(void **state)
{
	int sv[2], p[2];
	pair(sv);
	assert_int_equal(pipe(p), 0);
	const char msg[] = "hello worker";
	assert_int_equal(ipc_send(sv[0], IPC_CLIENT, 42, msg, sizeof msg, p[0]), 0);
	close(p[0]);    /* the sender closes its copy after a successful send */
	struct ipc_hdr h;
	char buf[64];
	int fd = -1;
	ssize_t n = ipc_recv(sv[1], &h, buf, sizeof buf, &fd);
	assert_int_equal(n, sizeof msg);
	assert_int_equal(h.type, IPC_CLIENT);
	assert_int_equal(h.version, IPC_VERSION);
	assert_int_equal(h.peer, 42);
	assert_int_equal(h.pid, (uint32_t)getpid());
	assert_string_equal(buf, msg);
	assert_true(fd >= 0);
	/* The received fd is the pipe's read end: data written to p[1] comes out. */
	assert_int_equal(write(p[1], "x", 1), 1);
	char c;
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_empty_payload_and_eagain(void **state)
{
	int sv[2];
	pair(sv);
	struct ipc_hdr h;
	char buf[8];
	int fd;
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EAGAIN);
	assert_int_equal(ipc_send(sv[0], IPC_READY, 0, NULL, 0, -1), 0);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), 0);
	assert_int_equal(h.type, IPC_READY);
	assert_int_equal(fd, -1);
	close(sv[0]);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPIPE);
	close(sv[1]);
}

/* Sends raw bytes (a forged header) with up to two fds attached. */
static void send_raw(int sock, const void *data, size_t len, int fd1, int fd2)
{
	struct iovec iov = { (void *)data, len };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	int nfd = (fd1 >= 0) + (fd2 >= 0);
	if (nfd) {
		memset(&ctl, 0, sizeof ctl);
		m.msg_control = ctl.buf;
		m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
		int fds[2] = { fd1, fd2 };
		memcpy(CMSG_DATA(c), fds, (size_t)nfd * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &m, 0), (ssize_t)len);
}

static void test_rejects_bad_messages(void **state)
{
	int sv[2];
	pair(sv);
	struct ipc_hdr h;
	char buf[64];
	int fd;
	/* wrong version */
	struct { struct ipc_hdr h; char p[4]; } m = { { IPC_STATUS, IPC_VERSION + 1, 4, 0, 1 }, "abc" };
	send_raw(sv[0], &m, sizeof m, -1, -1);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPROTO);
	/* length field does not match what arrived */
	m.h.version = IPC_VERSION;
	m.h.len = 40;
	send_raw(sv[0], &m, sizeof m, -1, -1);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPROTO);
	/* shorter than a header */
	send_raw(sv[0], "ab", 2, -1, -1);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPROTO);
	/* payload larger than the reader's buffer: truncated, refused */
	static char big[200];
	assert_int_equal(ipc_send(sv[0], IPC_STATUS, 0, big, sizeof big, -1), 0);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPROTO);
	/* two fds: refused, and both closed (none leaks to the reader) */
	int p[2];
	assert_int_equal(pipe(p), 0);
	m.h.len = 4;
	send_raw(sv[0], &m, sizeof m, p[0], p[1]);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), -EPROTO);
	assert_int_equal(fd, -1);
	close(p[0]);
	close(p[1]);
	/* the channel still works afterwards */
	assert_int_equal(ipc_send(sv[0], IPC_READY, 0, NULL, 0, -1), 0);
	assert_int_equal(ipc_recv(sv[1], &h, buf, sizeof buf, &fd), 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_names(void **state)
{
	assert_string_equal(ipc_type_name(IPC_CLIENT), "CLIENT");
	assert_string_equal(ipc_type_name(IPC_WORKER_CONFIG), "WORKER_CONFIG");
	assert_string_equal(ipc_type_name(9999), "UNKNOWN");
	assert_int_equal(ipc_send(-1, IPC_READY, 0, NULL, IPC_MAX_PAYLOAD + 1, -1), -EMSGSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_with_fd),
		cmocka_unit_test(test_empty_payload_and_eagain),
		cmocka_unit_test(test_rejects_bad_messages),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
