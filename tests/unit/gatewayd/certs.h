/*
 * Certificates for the TLS tests, made by the openssl CLI in a temporary
 * directory (no key is committed): ca (CA), m (CN infra0, SAN IP:127.0.0.1,
 * server and client use), client (CN client), revoked (CN revoked, in
 * ca.crl), and ca2 with other (CN other, like m) for "another CA".
 */
#ifndef ETCD_TESTS_GATEWAYD_CERTS_H
#define ETCD_TESTS_GATEWAYD_CERTS_H

extern char certs_dir[64];

/* Makes them (asserts on failure). */
void certs_make(void);
/* dir/name, in one of 8 rotating buffers. */
char *certs_path(const char *name);
void certs_remove(void);

#endif
