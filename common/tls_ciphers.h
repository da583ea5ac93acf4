/*
 * etcd's --cipher-suites names (Go's crypto/tls constants, as etcd 3.4's
 * tlsutil accepts them) and their OpenSSL names, for the one process that
 * checks them (the supervisor) and the one that uses them (gatewayd).
 */
#ifndef ETCD_COMMON_TLS_CIPHERS_H
#define ETCD_COMMON_TLS_CIPHERS_H

/* The OpenSSL name of Go's TLS 1.2 cipher suite go_name, or NULL if etcd
 * does not know it (it refuses those). */
const char *tls_cipher_openssl_name(const char *go_name);

#endif
