/*
 * The client and peer TLS settings from the flags (etcd's two TLSInfo), and
 * the checks etcd 3.4 makes of them before serving, with its words (the
 * files are loaded only to check, see tls_files.h: the supervisor holds no
 * TLS state; gatewayd builds the contexts).
 */
#ifndef ETCD_SUPERVISOR_TLS_CONF_H
#define ETCD_SUPERVISOR_TLS_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

/* At most this many --cipher-suites entries. */
#define TLS_CIPHERS_MAX 64

/* One side's settings (etcd's transport.TLSInfo). Strings never NULL. */
struct tls_side {
	bool given;     /* one of this side's TLS flags was set: workers get it */
	bool auto_tls;  /* cert and key are generated (or reused) in auto_dir */
	bool auto_ignored; /* --[peer-]auto-tls, but a cert or key was given */
	const char *cert_file, *key_file, *trusted_ca_file, *crl_file;
	const char *allowed_cn, *allowed_hostname;
	bool client_cert_auth;
	char *auto_dir;  /* owned: <data-dir>/fixtures/<side>, auto_tls only */
	char *auto_cert; /* owned: auto_dir/cert.pem */
	char *auto_key;  /* owned: auto_dir/key.pem */
};

struct tls_conf {
	struct tls_side client, peer;
	char **ciphers; /* owned: --cipher-suites split on commas */
	size_t n_ciphers;
};

/* Reads both sides from c. t zeroed before. 0 or -ENOMEM / -E2BIG. */
int tls_conf_init(struct tls_conf *t, const struct config *c);
/* Frees what t holds; NULL is a no-op. */
void tls_conf_clear(struct tls_conf *t);

/* etcd's TLSInfo.Empty(): neither a certificate nor a key. */
bool tls_side_empty(const struct tls_side *s);
/*
 * etcd's TLSInfo.String(): "cert = A, key = B, trusted-ca = C,
 * client-cert-auth = false, crl-file = D".
 */
void tls_side_string(const struct tls_side *s, char *buf, size_t len);

/* A line etcd logs along the checks (main logs it). */
typedef void tls_note_fn(void *arg, enum log_level lvl, const char *pkg,
			 const char *text);

/*
 * etcd's checks, in its order: cipher suite names, then the peer side
 * (https listeners need a certificate; a certificate, key or CA given is
 * loaded whatever the scheme, since peers dial out with it), then the client
 * side (https listeners need one; its files are loaded if one listener is
 * https). Also: every CRL file given must be readable (etcd only reads it
 * at the first handshake). Auto TLS files that do not exist yet are not
 * checked (they are generated after). Returns 0, or -EINVAL with err
 * (CFG_ERR_FATAL, etcd's text) filled; note (may be NULL) gets etcd's lines.
 */
int tls_conf_check(const struct tls_conf *t, const struct config *c,
		   tls_note_fn *note, void *arg, struct cfg_error *err);

#endif
