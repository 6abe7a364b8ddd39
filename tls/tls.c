/* tls.c — rtspd's OpenSSL server settings (see tls.h). */
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

/* TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 only. TLS 1.3's suites
 * are all AEAD and forward-secret; we only put AES-128-GCM first. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char reason[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, reason, sizeof reason);
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, file, reason);
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	if (!cert_file || !*cert_file || !key_file || !*key_file) {
		snprintf(err, errlen, "a TLS listener needs both a certificate and a key file");
		return NULL;
	}
	/* The plain reason first: OpenSSL's own for a missing file is cryptic. */
	const char *files[2][2] = { { "certificate", cert_file }, { "private key", key_file } };
	for (int i = 0; i < 2; i++)
		if (access(files[i][1], R_OK) < 0) {
			snprintf(err, errlen, "%s %s: %s", files[i][0], files[i][1], strerror(errno));
			return NULL;
		}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_error(err, errlen, "cannot create a TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes and a moving buffer: the relay retries a write with
	 * whatever is still queued, from wherever it now starts. Released
	 * buffers: an idle connection costs a few hundred bytes, not 34 KiB. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* TLS 1.3: AES-128-GCM first, the cheapest of the three on hardware
	 * with AES instructions (the media path encrypts every byte). */
	if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384") ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		ssl_error(err, errlen, "cipher list", TLS12_CIPHERS);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_error(err, errlen, "certificate", cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errlen, "private key", key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "private key %s does not match the certificate %s", key_file, cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_check_files(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_server_ctx_new(cert_file, key_file, err, errlen);
	if (!ctx)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}
