/*
 * Checks of certificate, key and CA files with the words of Go's crypto/tls
 * and etcd's tlsutil (etcd prints them as they are).
 */
#ifndef ETCD_SUPERVISOR_TLS_FILES_H
#define ETCD_SUPERVISOR_TLS_FILES_H

#include <stddef.h>

/* A certificate, key, CA or CRL file is read only up to this size. */
#define TLS_FILE_MAX (16u << 20)

/*
 * Go's os.ReadFile, bounded by TLS_FILE_MAX: 0 and a malloc'ed buffer, or
 * -EINVAL with Go's text ("open X: no such file or directory") in err.
 */
int tls_read_file(const char *path, char **ret_buf, size_t *ret_len,
		  char *err, size_t errlen);

/*
 * One certificate and key pair as Go's tls.X509KeyPair checks it (after
 * reading both files): 0 or -EINVAL with Go's text in err.
 */
int tls_check_keypair(const char *cert_file, const char *key_file, char *err,
		      size_t errlen);

/* etcd's tlsutil.NewCertPool of one file: 0 or -EINVAL, text in err. */
int tls_check_ca(const char *ca_file, char *err, size_t errlen);

/* Writes the message into err and returns -EINVAL: the error path of the
 * checks here and in tls_conf.c. */
int tls_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
