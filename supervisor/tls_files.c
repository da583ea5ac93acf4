/*
 * Certificate, key and CA files checked as Go's crypto/tls (X509KeyPair) and
 * etcd's tlsutil (NewCertPool) check them, with their words; OpenSSL loads
 * them only to check and everything is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_files.h"

int tls_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Go's text for an errno: glibc's, with a lowercase first letter. */
static int fail_errno(char *err, size_t errlen, const char *op,
		      const char *path, int e)
{
	char s[128];
	snprintf(s, sizeof(s), "%s", strerror(e));
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
	return tls_fail(err, errlen, "%s %s: %s", op, path, s);
}

int tls_read_file(const char *path, char **ret_buf, size_t *ret_len,
		  char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(err, errlen, "open", path, errno);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int r = 0;
	while (buf) {
		if (len == cap) {
			if (cap >= TLS_FILE_MAX) {
				r = tls_fail(err, errlen, "read %s: file too large", path);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail_errno(err, errlen, "read", path, errno);
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf)
		return tls_fail(err, errlen, "read %s: out of memory", path);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* The next PEM block, as Go's pem.Decode finds it: 1, or 0 at the end. */
static int pem_next(BIO *b, char **ret_name, unsigned char **ret_data,
		    long *ret_len)
{
	char *header = NULL;
	int ok = PEM_read_bio(b, ret_name, &header, ret_data, ret_len);
	OPENSSL_free(header);
	ERR_clear_error();
	return ok == 1;
}

/* Go's %v of a []string: "[A B]". */
static void add_skipped(char *list, size_t len, const char *name)
{
	size_t l = strlen(list);
	snprintf(list + l, len - l, "%s%s", l ? " " : "", name);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static X509 *parse_cert(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, len);
	if (x && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* The leaf certificate of cert PEM text, with X509KeyPair's errors. */
static int find_cert(BIO *b, X509 **ret_leaf, bool *ret_malformed, char *err,
		     size_t errlen)
{
	char skipped[512] = "", first[128] = "";
	size_t n_skipped = 0, n_certs = 0;
	char *name;
	unsigned char *data;
	long len;
	while (pem_next(b, &name, &data, &len)) {
		if (strcmp(name, "CERTIFICATE") == 0) {
			if (n_certs++ == 0)
				*ret_leaf = parse_cert(data, len);
		} else {
			if (n_skipped++ == 0)
				snprintf(first, sizeof(first), "%s", name);
			add_skipped(skipped, sizeof(skipped), name);
		}
		OPENSSL_free(name);
		OPENSSL_free(data);
	}
	if (n_certs) {
		*ret_malformed = !*ret_leaf;
		return 0;
	}
	if (!n_skipped)
		return tls_fail(err, errlen, "tls: failed to find any PEM data in certificate input");
	if (n_skipped == 1 && has_suffix(first, "PRIVATE KEY"))
		return tls_fail(err, errlen, "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched");
	return tls_fail(err, errlen, "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: [%s]",
		    skipped);
}

/* The first private key block of key PEM text, parsed. */
static int find_key(BIO *b, EVP_PKEY **ret_key, char *err, size_t errlen)
{
	char skipped[512] = "", first[128] = "";
	size_t n_skipped = 0;
	char *name;
	unsigned char *data;
	long len;
	for (;;) {
		if (!pem_next(b, &name, &data, &len)) {
			if (!n_skipped)
				return tls_fail(err, errlen, "tls: failed to find any PEM data in key input");
			if (n_skipped == 1 && strcmp(first, "CERTIFICATE") == 0)
				return tls_fail(err, errlen, "tls: found a certificate rather than a key in the PEM for the private key");
			return tls_fail(err, errlen, "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the following types: [%s]",
				    skipped);
		}
		if (strcmp(name, "PRIVATE KEY") == 0 ||
		    has_suffix(name, " PRIVATE KEY"))
			break;
		if (n_skipped++ == 0)
			snprintf(first, sizeof(first), "%s", name);
		add_skipped(skipped, sizeof(skipped), name);
		OPENSSL_free(name);
		OPENSSL_free(data);
	}
	const unsigned char *p = data;
	*ret_key = d2i_AutoPrivateKey(NULL, &p, len);
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(data);
	return 0;
}

/* Go's public key algorithms for TLS certificates; 0 if unknown. */
static int key_kind(const EVP_PKEY *k)
{
	int id = EVP_PKEY_get_base_id(k);
	return id == EVP_PKEY_RSA || id == EVP_PKEY_EC || id == EVP_PKEY_ED25519 ?
		       id : 0;
}

int tls_check_keypair(const char *cert_file, const char *key_file, char *err,
		      size_t errlen)
{
	char *cbuf = NULL, *kbuf = NULL;
	size_t clen, klen;
	BIO *cb = NULL, *kb = NULL;
	X509 *leaf = NULL;
	EVP_PKEY *key = NULL;
	bool malformed = false;
	int r;

	if ((r = tls_read_file(cert_file, &cbuf, &clen, err, errlen)) < 0)
		return r;
	if ((r = tls_read_file(key_file, &kbuf, &klen, err, errlen)) < 0)
		goto out;
	cb = BIO_new_mem_buf(cbuf, (int)clen);
	kb = BIO_new_mem_buf(kbuf, (int)klen);
	if (!cb || !kb) {
		r = tls_fail(err, errlen, "out of memory");
		goto out;
	}
	if ((r = find_cert(cb, &leaf, &malformed, err, errlen)) < 0 ||
	    (r = find_key(kb, &key, err, errlen)) < 0)
		goto out;
	if (malformed) {
		r = tls_fail(err, errlen, "x509: malformed certificate");
		goto out;
	}
	if (!key) {
		r = tls_fail(err, errlen, "tls: failed to parse private key");
		goto out;
	}
	EVP_PKEY *pub = X509_get0_pubkey(leaf);
	ERR_clear_error();
	if (!pub || !key_kind(pub)) {
		r = tls_fail(err, errlen, "tls: unknown public key algorithm");
		goto out;
	}
	if (key_kind(pub) != EVP_PKEY_get_base_id(key)) {
		r = tls_fail(err, errlen, "tls: private key type does not match public key type");
		goto out;
	}
	if (EVP_PKEY_eq(pub, key) != 1) {
		r = tls_fail(err, errlen, "tls: private key does not match public key");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(leaf);
	BIO_free(cb);
	BIO_free(kb);
	free(cbuf);
	free(kbuf);
	return r;
}

int tls_check_ca(const char *ca_file, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int r = tls_read_file(ca_file, &buf, &len, err, errlen);
	if (r < 0)
		return r;
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	if (!b) {
		free(buf);
		return tls_fail(err, errlen, "out of memory");
	}
	char *name;
	unsigned char *data;
	long dlen;
	/* etcd parses every block of the file as a certificate. */
	while (r == 0 && pem_next(b, &name, &data, &dlen)) {
		X509 *x = parse_cert(data, dlen);
		if (!x)
			r = tls_fail(err, errlen, "x509: malformed certificate");
		X509_free(x);
		OPENSSL_free(name);
		OPENSSL_free(data);
	}
	ERR_clear_error();
	BIO_free(b);
	free(buf);
	return r;
}
