/*
 * SSL_CTX for etcd's TLS settings, server and client side, and Go's wording
 * of handshake failures (what etcd logs as "rejected connection ...").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_ciphers.h"
#include "tls_ctx.h"

/* What the verify callback checks beyond the chain. */
struct vopts {
	char *allowed_cn;
	int crl;
};

static int vopts_idx = -1;

static void vopts_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp)
{
	struct vopts *o = ptr;
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (o) {
		free(o->allowed_cn);
		free(o);
	}
}

static void seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* OpenSSL's last queued reason, for error texts; the queue is emptied. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "unknown error";
}

static int is_set(const char *s)
{
	return s && *s;
}

/*
 * etcd's extra client checks: a CRL only revokes the serials it lists (a
 * CA without one is not an error, nor is an outdated list, as etcd reads
 * it), and --peer-cert-allowed-cn wants the leaf's common name.
 */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
		SSL_get_ex_data_X509_STORE_CTX_idx());
	struct vopts *o = ssl && vopts_idx >= 0
		? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), vopts_idx) : NULL;
	int e = X509_STORE_CTX_get_error(xs);
	if (!o)
		return ok;
	if (!ok && o->crl && (e == X509_V_ERR_UNABLE_TO_GET_CRL ||
			      e == X509_V_ERR_CRL_HAS_EXPIRED ||
			      e == X509_V_ERR_CRL_NOT_YET_VALID))
		return 1;
	if (ok && o->allowed_cn && X509_STORE_CTX_get_error_depth(xs) == 0) {
		X509 *c = X509_STORE_CTX_get_current_cert(xs);
		char cn[256];
		int n = c ? X509_NAME_get_text_by_NID(X509_get_subject_name(c),
						      NID_commonName, cn,
						      sizeof(cn))
			  : -1;
		if (n < 0 || strcmp(cn, o->allowed_cn) != 0) {
			X509_STORE_CTX_set_error(xs,
				X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
	}
	return ok;
}

/* The common part: versions, TLS 1.2 suites, certificate and key. */
static SSL_CTX *ctx_new(const SSL_METHOD *m, const Ipc__TlsInfo *ti,
			char *const *ciphers, size_t n, int *ret, char *err,
			size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(m);
	*ret = -ENOMEM;
	if (!ctx) {
		seterr(err, errlen, "cannot create a TLS context: %s",
		       ssl_reason());
		return NULL;
	}
	*ret = -EINVAL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Renegotiation is a way to make a server work for nothing; Go
	 * refuses it too. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (n) {
		size_t cap = 1;
		for (size_t i = 0; i < n; i++) {
			const char *o = tls_cipher_openssl_name(ciphers[i]);
			if (!o) {
				seterr(err, errlen,
				       "unexpected TLS cipher suite \"%s\"",
				       ciphers[i]);
				goto fail;
			}
			cap += strlen(o) + 1;
		}
		char *list = calloc(1, cap);
		if (!list) {
			*ret = -ENOMEM;
			seterr(err, errlen, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(list, ":");
			strcat(list, tls_cipher_openssl_name(ciphers[i]));
		}
		int ok = SSL_CTX_set_cipher_list(ctx, list);
		free(list);
		if (!ok) {
			seterr(err, errlen, "cannot use cipher suites: %s",
			       ssl_reason());
			goto fail;
		}
	}
	if (ti && is_set(ti->cert_file)) {
		if (SSL_CTX_use_certificate_chain_file(ctx, ti->cert_file) != 1) {
			seterr(err, errlen, "cannot load certificate %s: %s",
			       ti->cert_file, ssl_reason());
			goto fail;
		}
		const char *key = is_set(ti->key_file) ? ti->key_file
						       : ti->cert_file;
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			if (ERR_GET_REASON(ERR_peek_last_error()) ==
			    X509_R_KEY_VALUES_MISMATCH)
				seterr(err, errlen, "key %s does not match "
				       "certificate %s", key, ti->cert_file);
			else
				seterr(err, errlen, "cannot load key %s: %s",
				       key, ssl_reason());
			ERR_clear_error();
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			seterr(err, errlen, "key %s does not match certificate "
			       "%s", key, ti->cert_file);
			ERR_clear_error();
			goto fail;
		}
	}
	if (ti && is_set(ti->trusted_ca_file) &&
	    SSL_CTX_load_verify_locations(ctx, ti->trusted_ca_file, NULL) != 1) {
		seterr(err, errlen, "cannot load trusted CA %s: %s",
		       ti->trusted_ca_file, ssl_reason());
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int set_vopts(SSL_CTX *ctx, const Ipc__TlsInfo *ti, char *err,
		     size_t errlen)
{
	if (vopts_idx < 0)
		vopts_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
						     vopts_free);
	struct vopts *o = calloc(1, sizeof(*o));
	if (vopts_idx < 0 || !o) {
		free(o);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	o->crl = is_set(ti->crl_file);
	if (is_set(ti->allowed_cn) && !(o->allowed_cn = strdup(ti->allowed_cn))) {
		free(o);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!SSL_CTX_set_ex_data(ctx, vopts_idx, o)) {
		vopts_free(NULL, o, NULL, 0, 0, NULL);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Go's VerifyHostname: an IP address matches IP SANs only, a name DNS
 * SANs only (no common name fallback). */
static int want_host(X509_VERIFY_PARAM *p, const char *host)
{
	unsigned char ip[16];
	X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(p, host) == 1 ? 0 : -ENOMEM;
	return X509_VERIFY_PARAM_set1_host(p, host, 0) == 1 ? 0 : -ENOMEM;
}

int tls_ctx_server(const Ipc__TlsInfo *ti, char *const *ciphers, size_t n,
		   SSL_CTX **ret_ctx, char *err, size_t errlen)
{
	int ret;
	if (!ti || !is_set(ti->cert_file)) {
		seterr(err, errlen, "KeyFile and CertFile are not presented");
		return -EINVAL;
	}
	SSL_CTX *ctx = ctx_new(TLS_server_method(), ti, ciphers, n, &ret, err,
			       errlen);
	if (!ctx)
		return ret;
	if (ti->client_cert_auth) {
		if (is_set(ti->trusted_ca_file)) {
			STACK_OF(X509_NAME) *names =
				SSL_load_client_CA_file(ti->trusted_ca_file);
			if (names)
				SSL_CTX_set_client_CA_list(ctx, names);
			ERR_clear_error();
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
					SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_cb);
		if ((ret = set_vopts(ctx, ti, err, errlen)) < 0)
			goto fail;
		X509_STORE *st = SSL_CTX_get_cert_store(ctx);
		if (is_set(ti->crl_file)) {
			X509_LOOKUP *lu = X509_STORE_add_lookup(st,
				X509_LOOKUP_file());
			if (!lu || X509_load_crl_file(lu, ti->crl_file,
						      X509_FILETYPE_PEM) <= 0) {
				seterr(err, errlen, "cannot load CRL %s: %s",
				       ti->crl_file, ssl_reason());
				ret = -EINVAL;
				goto fail;
			}
			X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		}
		if (is_set(ti->allowed_hostname) &&
		    (ret = want_host(SSL_CTX_get0_param(ctx),
				     ti->allowed_hostname)) < 0) {
			seterr(err, errlen, "out of memory");
			goto fail;
		}
	}
	/* Sessions resume from our cache (TLS 1.2) or tickets (1.3): a
	 * reconnecting peer or client skips the public-key work. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"etcd", 4);
	*ret_ctx = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return ret;
}

int tls_ctx_client(const Ipc__TlsInfo *ti, char *const *ciphers, size_t n,
		   SSL_CTX **ret_ctx, char *err, size_t errlen)
{
	int ret;
	SSL_CTX *ctx = ctx_new(TLS_client_method(), ti, ciphers, n, &ret, err,
			       errlen);
	if (!ctx)
		return ret;
	if (ti && is_set(ti->trusted_ca_file)) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else if (ti && ti->auto_tls) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
		ERR_clear_error();
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	*ret_ctx = ctx;
	return 0;
}

int tls_client_set_host(SSL *ssl, const char *host)
{
	unsigned char ip[16];
	int is_ip = inet_pton(AF_INET, host, ip) == 1 ||
		    inet_pton(AF_INET6, host, ip) == 1;
	/* Go sends no SNI for an address. */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
		return -ENOMEM;
	if (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE)
		return 0;
	return want_host(SSL_get0_param(ssl), host);
}

/* crypto/tls's alert texts. */
static const char *go_alert(int d)
{
	switch (d) {
	case 10: return "unexpected message";
	case 20: return "bad record MAC";
	case 21: return "decryption failed";
	case 22: return "record overflow";
	case 30: return "decompression failure";
	case 40: return "handshake failure";
	case 42: return "bad certificate";
	case 43: return "unsupported certificate";
	case 44: return "revoked certificate";
	case 45: return "expired certificate";
	case 46: return "unknown certificate";
	case 47: return "illegal parameter";
	case 48: return "unknown certificate authority";
	case 49: return "access denied";
	case 50: return "error decoding message";
	case 51: return "error decrypting message";
	case 70: return "protocol version not supported";
	case 71: return "insufficient security level";
	case 80: return "internal error";
	case 86: return "inappropriate fallback";
	case 90: return "user canceled";
	case 100: return "no renegotiation";
	case 109: return "missing extension";
	case 110: return "unsupported extension";
	case 112: return "unrecognized name";
	case 116: return "certificate required";
	case 120: return "no application protocol";
	default: return NULL;
	}
}

/* Appends the names (IP or DNS SANs) of c to out, comma separated. */
static void san_list(X509 *c, int want_ip, char *out, size_t len)
{
	GENERAL_NAMES *gn = c ? X509_get_ext_d2i(c, NID_subject_alt_name,
						 NULL, NULL) : NULL;
	size_t o = 0;
	out[0] = 0;
	for (int i = 0; gn && i < sk_GENERAL_NAME_num(gn); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gn, i);
		char buf[INET6_ADDRSTRLEN];
		const char *s = NULL;
		if (want_ip && g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d =
				ASN1_STRING_get0_data(g->d.iPAddress);
			if (l == 4 || l == 16)
				s = inet_ntop(l == 4 ? AF_INET : AF_INET6, d, buf,
					      sizeof(buf));
		} else if (!want_ip && g->type == GEN_DNS) {
			int l = ASN1_STRING_length(g->d.dNSName);
			if (l > 0 && (size_t)l < sizeof(buf)) {
				memcpy(buf, ASN1_STRING_get0_data(g->d.dNSName),
				       (size_t)l);
				buf[l] = 0;
				s = buf;
			}
		}
		if (s && o + strlen(s) + 3 < len)
			o += (size_t)snprintf(out + o, len - o, "%s%s",
					      o ? ", " : "", s);
	}
	GENERAL_NAMES_free(gn);
}

/* Go's x509 error for a failed chain or host check. */
static void x509_text(SSL *ssl, long vr, char *buf, size_t len)
{
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(buf, len, "x509: certificate signed by unknown authority");
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, len, "x509: certificate has expired or is not yet valid");
		return;
	case X509_V_ERR_CERT_REVOKED:
		snprintf(buf, len, "revoked certificate");
		return;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH: {
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
		X509 *c = chain && sk_X509_num(chain) ? sk_X509_value(chain, 0)
						       : NULL;
		int ip = vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
		char *ipa = ip ? X509_VERIFY_PARAM_get1_ip_asc(p) : NULL;
		const char *host = ip ? ipa : X509_VERIFY_PARAM_get0_host(p, 0);
		char names[256];
		san_list(c, ip, names, sizeof(names));
		if (!names[0] && ip)
			snprintf(buf, len, "x509: cannot validate certificate "
				 "for %s because it doesn't contain any IP SANs",
				 host ? host : "");
		else if (!names[0])
			snprintf(buf, len, "x509: certificate is not valid for "
				 "any names, but wanted to match %s",
				 host ? host : "");
		else
			snprintf(buf, len, "x509: certificate is valid for %s, "
				 "not %s", names, host ? host : "");
		OPENSSL_free(ipa);
		return;
	}
	default:
		snprintf(buf, len, "x509: %s", X509_verify_cert_error_string(vr));
	}
}

static void eof_text(SSL *ssl, char *buf, size_t len)
{
	BIO *b = SSL_get_rbio(ssl);
	snprintf(buf, len, "%s", b && BIO_number_read(b) ? "unexpected EOF"
							 : "EOF");
}

int tls_handshake_error(SSL *ssl, int ret, char *buf, size_t len)
{
	int se = SSL_get_error(ssl, ret);
	int server = SSL_is_server(ssl);
	unsigned long e;
	switch (se) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_X509_LOOKUP:
	case SSL_ERROR_WANT_ASYNC:
	case SSL_ERROR_WANT_CLIENT_HELLO_CB:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		eof_text(ssl, buf, len);
		return 1;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_last_error()) {
			if (errno == ECONNRESET)
				snprintf(buf, len, "connection reset by peer");
			else
				eof_text(ssl, buf, len);
			return 1;
		}
		break;
	default:
		break;
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
		const char *r = e ? ERR_reason_error_string(e) : NULL;
		snprintf(buf, len, "tls: %s", r ? r : "handshake failed");
		return 1;
	}
	int reason = ERR_GET_REASON(e);
	if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
		const char *a = go_alert(reason - SSL_AD_REASON_OFFSET);
		if (a)
			snprintf(buf, len, "remote error: tls: %s", a);
		else
			snprintf(buf, len, "remote error: tls: alert(%d)",
				 reason - SSL_AD_REASON_OFFSET);
		return 1;
	}
	switch (reason) {
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		eof_text(ssl, buf, len);
		return 1;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		snprintf(buf, len, "tls: client didn't provide a certificate");
		return 1;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_UNKNOWN_PROTOCOL:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		snprintf(buf, len, "tls: first record does not look like a TLS "
			 "handshake");
		return 1;
	case SSL_R_NO_SHARED_CIPHER:
		snprintf(buf, len, "tls: no cipher suite supported by both "
			 "client and server");
		return 1;
	case SSL_R_UNSUPPORTED_PROTOCOL:
		snprintf(buf, len, server ? "tls: client offered only unsupported "
					    "versions"
					  : "tls: server selected unsupported "
					    "protocol version");
		return 1;
	case SSL_R_CERTIFICATE_VERIFY_FAILED: {
		long vr = SSL_get_verify_result(ssl);
		char x[400];
		if (server && (vr == X509_V_ERR_APPLICATION_VERIFICATION ||
			       vr == X509_V_ERR_HOSTNAME_MISMATCH ||
			       vr == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
			/* etcd's --peer-cert-allowed-cn / -hostname check */
			snprintf(buf, len, "client certificate authentication "
				 "failed");
			return 1;
		}
		x509_text(ssl, vr, x, sizeof(x));
		if (server && vr != X509_V_ERR_CERT_REVOKED)
			snprintf(buf, len, "tls: failed to verify client "
				 "certificate: %s", x);
		else
			snprintf(buf, len, "%s", x);
		return 1;
	}
	default: {
		const char *r = ERR_reason_error_string(e);
		snprintf(buf, len, "tls: %s", r ? r : "handshake failed");
		return 1;
	}
	}
}
