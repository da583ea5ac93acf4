/* Self-signed certificates for --auto-tls / --peer-auto-tls (OpenSSL 3). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "autotls.h"

/* Go's time.Now().Add(365 * 24 * time.Hour). */
#define VALIDITY_S (365L * 24 * 3600)

static int fail_errno(char *err, size_t errlen, const char *op,
		      const char *path, int e)
{
	char s[128];
	snprintf(s, sizeof(s), "%s", strerror(e));
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
	snprintf(err, errlen, "%s %s: %s", op, path, s);
	return -e;
}

/* os.MkdirAll(path, 0700). */
static int mkdir_all(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return fail_errno(err, errlen, "mkdir", path, ENAMETOOLONG);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return fail_errno(err, errlen, "mkdir", buf, errno);
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return fail_errno(err, errlen, "mkdir", buf, errno);
	if (stat(buf, &st) < 0)
		return fail_errno(err, errlen, "stat", buf, errno);
	if (!S_ISDIR(st.st_mode))
		return fail_errno(err, errlen, "mkdir", buf, ENOTDIR);
	return 0;
}

/* dir/name from data, mode, via dir/name.tmp, fsync and rename. */
static int write_atomic(const char *dir, const char *name, const void *data,
			size_t len, mode_t mode, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp))
		return fail_errno(err, errlen, "open", dir, ENAMETOOLONG);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return fail_errno(err, errlen, "open", tmp, errno);
	int r = 0;
	if (fchmod(fd, mode) < 0)
		r = fail_errno(err, errlen, "chmod", tmp, errno);
	for (size_t off = 0; r == 0 && off < len;) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = fail_errno(err, errlen, "write", tmp, errno);
		else
			off += (size_t)w;
	}
	if (r == 0 && fsync(fd) < 0)
		r = fail_errno(err, errlen, "sync", tmp, errno);
	if (close(fd) < 0 && r == 0)
		r = fail_errno(err, errlen, "close", tmp, errno);
	if (r == 0 && rename(tmp, path) < 0)
		r = fail_errno(err, errlen, "rename", tmp, errno);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(err, errlen, "open", dir, errno);
	int r = fsync(fd) < 0 ? fail_errno(err, errlen, "sync", dir, errno) : 0;
	close(fd);
	return r;
}

/* Go's order: the DNS names, then the IP addresses (IPv4 as 4 bytes). */
static GENERAL_NAMES *sans(const struct url_list *urls)
{
	GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();
	if (!g)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < urls->n; i++) {
			const char *h = urls->v[i].host;
			unsigned char ip[16];
			int iplen = 0;
			if (inet_pton(AF_INET, h, ip) == 1) {
				iplen = 4;
			} else if (inet_pton(AF_INET6, h, ip) == 1) {
				static const unsigned char mapped[12] = {
					0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
				iplen = 16;
				if (memcmp(ip, mapped, 12) == 0) {
					memmove(ip, ip + 12, 4);
					iplen = 4;
				}
			}
			if ((pass == 0) != (iplen == 0))
				continue;
			GENERAL_NAME *n = GENERAL_NAME_new();
			ASN1_STRING *s = iplen ? ASN1_OCTET_STRING_new() :
						 ASN1_IA5STRING_new();
			bool ok = n && s &&
				  ASN1_STRING_set(s, iplen ? (const void *)ip : h,
						  iplen ? iplen : (int)strlen(h));
			if (ok) {
				GENERAL_NAME_set0_value(n, iplen ? GEN_IPADD : GEN_DNS, s);
				s = NULL;
				ok = sk_GENERAL_NAME_push(g, n) > 0;
			}
			ASN1_STRING_free(s);
			if (!ok) {
				GENERAL_NAME_free(n);
				GENERAL_NAMES_free(g);
				return NULL;
			}
		}
	}
	return g;
}

/* Adds extension nid from OpenSSL's configuration syntax. */
static bool add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	bool ok = e && X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* Go's x509 template of transport.SelfCert, self-signed with pkey. */
static X509 *make_cert(EVP_PKEY *pkey, const struct url_list *urls)
{
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *g = NULL;
	unsigned char serial[16];
	time_t now = time(NULL);
	bool ok = x && X509_set_version(x, X509_VERSION_3) &&
		  RAND_bytes(serial, sizeof(serial)) == 1;
	/* rand.Int below 2^128: positive, without leading zero bytes. */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	ok = ok && (name = X509_NAME_new()) &&
	     X509_NAME_add_entry_by_txt(name, "O", V_ASN1_PRINTABLESTRING,
					(const unsigned char *)"etcd", -1, -1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, name);
	ok = ok && ASN1_TIME_set(X509_getm_notBefore(x), now) &&
	     ASN1_TIME_set(X509_getm_notAfter(x), now + VALIDITY_S) &&
	     X509_set_pubkey(x, pkey);
	ok = ok && add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
	     add_ext(x, NID_ext_key_usage, "serverAuth") &&
	     add_ext(x, NID_basic_constraints, "critical,CA:FALSE");
	if (ok && urls->n) {
		ok = (g = sans(urls)) &&
		     X509_add1_ext_i2d(x, NID_subject_alt_name, g, 0, X509V3_ADD_DEFAULT) == 1;
	}
	ok = ok && X509_sign(x, pkey, EVP_sha512()) > 0;
	GENERAL_NAMES_free(g);
	X509_NAME_free(name);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* The PEM texts: the certificate and the SEC1 ("EC PRIVATE KEY") key. */
static int encode(X509 *x, EVP_PKEY *pkey, BIO *cert, BIO *key)
{
	OSSL_ENCODER_CTX *ectx = OSSL_ENCODER_CTX_new_for_pkey(
		pkey, EVP_PKEY_KEYPAIR, "PEM", "type-specific", NULL);
	bool ok = ectx && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
		  OSSL_ENCODER_to_bio(ectx, key) == 1 &&
		  PEM_write_bio_X509(cert, x) == 1;
	OSSL_ENCODER_CTX_free(ectx);
	return ok ? 0 : -EIO;
}

static size_t bio_data(BIO *b, const char **ret)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	*ret = p;
	return n > 0 ? (size_t)n : 0;
}

int autotls_ensure(const char *dir, const struct url_list *urls, char *err,
		   size_t errlen)
{
	char cert_path[PATH_MAX], key_path[PATH_MAX];
	struct stat st;
	int r;

	if ((r = mkdir_all(dir, err, errlen)) < 0)
		return r;
	if (snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir) >= (int)sizeof(cert_path) ||
	    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir) >= (int)sizeof(key_path))
		return fail_errno(err, errlen, "open", dir, ENAMETOOLONG);
	if (stat(cert_path, &st) == 0 && stat(key_path, &st) == 0)
		return 0;

	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	X509 *x = pkey ? make_cert(pkey, urls) : NULL;
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	if (!x || !cb || !kb || encode(x, pkey, cb, kb) < 0) {
		unsigned long e = ERR_peek_last_error();
		const char *why = e ? ERR_reason_error_string(e) : NULL;
		snprintf(err, errlen, "cannot generate the certificate: %s",
			 why ? why : "out of memory");
		r = -EIO;
		goto out;
	}
	const char *data;
	size_t len = bio_data(cb, &data);
	if ((r = write_atomic(dir, "cert.pem", data, len, 0644, err, errlen)) < 0)
		goto out;
	len = bio_data(kb, &data);
	if ((r = write_atomic(dir, "key.pem", data, len, 0600, err, errlen)) < 0)
		goto out;
	r = fsync_dir(dir, err, errlen);
	if (r == 0)
		r = 1;
out:
	ERR_clear_error();
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}
