/* tls.h — the TLS front process ("rtspd --tls"), and the one place that
 * says how rtspd configures OpenSSL.
 *
 * Why a process of its own: workers serve sessions straight from their
 * shared-memory ring with writev/sendmmsg on a plain socket, and this
 * kernel offers no kTLS to hand a TLS session to them. So the master
 * passes every connection accepted on a TLS listener (RTSPS, HTTPS) to
 * this process, which runs the handshake without blocking (a client that
 * stalls mid-handshake only times out itself) and then relays: it makes a
 * socketpair, sends one end back to the master as if it were a new plain
 * connection (IPC_TLS_PLAIN with the client's real addresses) and
 * encrypts/decrypts between the TLS socket and the other end. The master
 * routes the plain end like any connection, so RTSP, the HTTP tunnel and
 * WebSocket work inside TLS with no code of their own, and the worker only
 * learns (IPC_CLIENT_TLS) that the channel is secure.
 *
 * Ownership: the TLS process owns every connection it received (the TLS
 * socket, the SSL object, its end of the socketpair); it sends the other
 * end to the master and closes its copy. A connection ends when either
 * side closes; the master's end of the IPC socket closing ends the
 * process. It never sees media rings or configuration beyond
 * struct ipc_tls_config.
 */
#ifndef RTSPD_TLS_H
#define RTSPD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* A server context with rtspd's settings (TLS 1.2 or later, forward-secret
 * AEAD ciphers only, no compression or renegotiation) and the certificate
 * chain and key from these files, checked to match. NULL with err saying
 * which file and why. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Checks that cert_file and key_file make a server context (config check). */
int tls_check_files(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* The TLS process's main loop, IPC socket on ipc_fd. Returns the exit code. */
int tls_main(int ipc_fd);

#endif
