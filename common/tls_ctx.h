/*
 * OpenSSL contexts from etcd's TLS settings (an Ipc__TlsInfo and
 * --cipher-suites), for the server side of a listener and the client side of
 * outgoing connections, and etcd's (Go's) words for why a handshake failed.
 * Does not log: failures come back as -errno and a text.
 */
#ifndef ETCD_COMMON_TLS_CTX_H
#define ETCD_COMMON_TLS_CTX_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "ipc.pb-c.h"

/*
 * A server context: the certificate and key of ti; with client_cert_auth,
 * a client certificate signed by trusted_ca_file is required (and checked
 * against crl_file, allowed_cn and allowed_hostname). TLS 1.2 and 1.3;
 * ciphers (n of them, Go's names) restrict TLS 1.2's suites.
 * 0 and *ret_ctx, or -errno with err filled.
 */
int tls_ctx_server(const Ipc__TlsInfo *ti, char *const *ciphers, size_t n,
		   SSL_CTX **ret_ctx, char *err, size_t errlen);

/*
 * A client context: ti's certificate (if any) as client certificate; the
 * server is verified against trusted_ca_file, or not at all with auto_tls
 * and no CA (etcd's InsecureSkipVerify), or against the system's roots.
 */
int tls_ctx_client(const Ipc__TlsInfo *ti, char *const *ciphers, size_t n,
		   SSL_CTX **ret_ctx, char *err, size_t errlen);

/* Prepares a client SSL for host (a name or an IP address, no brackets):
 * SNI for a name, and the server's certificate must name host. 0 or
 * -ENOMEM. */
int tls_client_set_host(SSL *ssl, const char *host);

/*
 * Why a handshake on ssl failed, as Go words it (etcd logs it): call when
 * SSL_do_handshake (or its callers) returned ret <= 0, with the error queue
 * untouched. 1 with buf filled if it was a failure, 0 if it only waits
 * for the socket.
 */
int tls_handshake_error(SSL *ssl, int ret, char *buf, size_t len);

#endif
