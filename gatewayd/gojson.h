/*
 * JSON the way Go's encoding/json reads and writes it. etcd's gateway is Go:
 * to answer a malformed request with the same message we must scan it with
 * the same state machine ("invalid character 'b' looking for beginning of
 * object key string", "unexpected EOF", ...), and to print strings the same
 * way we must escape as Go does (HTML-safe, U+FFFD for invalid UTF-8).
 *
 * The scanner only validates; the values are then read in place (by pbjson)
 * with the gojson_skip and gojson_unquote helpers, which trust their input
 * because the scanner has checked it.
 */
#ifndef ETCD_GATEWAYD_GOJSON_H
#define ETCD_GATEWAYD_GOJSON_H

#include <stddef.h>

#include "jbuf.h"

/* Room for any error message we produce. */
#define GOJSON_ERRMAX 256

/* Go's maximum nesting depth of arrays and objects. */
#define GOJSON_MAX_DEPTH 10000

/*
 * As json.Decoder.Decode: finds the first JSON value in s. Returns 0 with
 * the value in [*ret_start, *ret_end); 1 when s holds only white space
 * (Go's io.EOF); -EINVAL with Go's message in err (GOJSON_ERRMAX bytes).
 */
int gojson_decode_first(const char *s, size_t len, size_t *ret_start,
			size_t *ret_end, char *err);

/*
 * As the validity check of json.Unmarshal: s must be exactly one value with
 * optional white space around it. 0 or -EINVAL with Go's message in err.
 */
int gojson_check(const char *s, size_t len, char *err);

/* Index of the first byte at or after i that is not JSON white space. */
size_t gojson_skip_ws(const char *s, size_t len, size_t i);
/* End of the (valid) value starting at s[i]. */
size_t gojson_skip(const char *s, size_t len, size_t i);

/*
 * The string literal s[0..len) (quotes included, valid) unescaped as Go does
 * into out, which must hold len bytes plus 2 per byte >= 0x80 (an invalid
 * UTF-8 byte becomes U+FFFD). Returns the length written.
 * *ret_plain (if not NULL) tells whether the literal had no escapes and was
 * pure ASCII, i.e. whether out equals the text between the quotes.
 */
size_t gojson_unquote(const char *s, size_t len, char *out, int *ret_plain);

/* Appends s as a JSON string literal, escaped as Go's json.Marshal does. */
void gojson_quote(struct jbuf *b, const char *s, size_t len);
/* Appends s as Go's strconv.Quote (fmt's %q) prints it. */
void go_quote(struct jbuf *b, const char *s, size_t len);

#endif
