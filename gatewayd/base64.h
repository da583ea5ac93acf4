/*
 * Standard base64 (RFC 4648, padded) as Go's encoding/base64 StdEncoding
 * does it, including where it reports the first illegal byte: the JSON
 * gateway must fail with the same "illegal base64 data at input byte N".
 */
#ifndef ETCD_GATEWAYD_BASE64_H
#define ETCD_GATEWAYD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to encode n bytes (no terminating NUL). */
#define BASE64_ENCLEN(n) ((((n) + 2) / 3) * 4)
/* Upper bound of the bytes n base64 characters decode to. */
#define BASE64_DECLEN(n) (((n) / 4) * 3 + 3)

/* Encodes src into dst (BASE64_ENCLEN(len) bytes); returns the bytes written. */
size_t base64_encode(char *dst, const uint8_t *src, size_t len);

/*
 * Decodes src into dst (BASE64_DECLEN(len) bytes). Like Go, '\r' and '\n'
 * are skipped anywhere. Returns 0 and sets *ret_len, or -EINVAL and sets
 * *ret_bad to the offset Go reports in its CorruptInputError.
 */
int base64_decode(uint8_t *dst, const char *src, size_t len, size_t *ret_len,
		  size_t *ret_bad);

#endif
