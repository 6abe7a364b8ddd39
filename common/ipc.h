/* ipc.h — framed, typed, versioned messages between master and workers.
 *
 * The channel is a SOCK_SEQPACKET socketpair, so one send is one message.
 * Every message is { struct ipc_hdr, payload } with at most one file
 * descriptor attached (SCM_RIGHTS). Readers check the version and that the
 * header's length equals exactly what arrived.
 *
 * fd ownership: ipc_send() never closes the fd it sends; the sender closes its
 * copy after a successful send. ipc_recv() hands the received fd to the
 * caller, who owns it (and must close it even when it rejects the message).
 */
#ifndef RTSPD_IPC_H
#define RTSPD_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ipc-t.h"

/* Returns 0, or -errno (-EAGAIN when the peer's queue is full). */
int ipc_send(int sock, uint16_t type, uint32_t peer, const void *payload, size_t len, int fd);

/* Receives one message. Returns the payload length (>= 0) and fills hdr;
 * *fd is the attached fd or -1. Returns -EAGAIN when nothing is queued,
 * -EPIPE when the peer closed, -EPROTO for a malformed message (wrong
 * version, length mismatch, truncated, more than one fd). */
ssize_t ipc_recv(int sock, struct ipc_hdr *hdr, void *payload, size_t cap, int *fd);

const char *ipc_type_name(uint16_t type);

#endif
