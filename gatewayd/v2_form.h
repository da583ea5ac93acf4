/*
 * The v2 keys API's parameters, read as Go's net/http reads them
 * (url.ParseQuery on the query string and on a form-encoded body, the
 * body's values first), so that the same request means the same thing
 * and a bad one gets Go's words.
 */
#ifndef ETCD_GATEWAYD_V2_FORM_H
#define ETCD_GATEWAYD_V2_FORM_H

#include <stddef.h>

#include "arena.h"

/* Pairs we keep from one request: more is not a v2 request. */
#define V2_FORM_MAX_PAIRS 256

struct v2_kv {
	const char *k, *v; /* unescaped, NUL-terminated (in the arena) */
	size_t klen, vlen; /* a %00 may make them longer than strlen */
};

struct v2_form {
	struct v2_kv kv[V2_FORM_MAX_PAIRS];
	size_t n;
};

/*
 * Appends the pairs of s (len bytes) as url.ParseQuery does: '&'-separated,
 * '+' is a space, %XX escapes; a pair with ';' or a bad escape is skipped
 * and the first such error is returned: -EINVAL with Go's message in err
 * (`invalid semicolon separator in query`, `invalid URL escape "%zz"`).
 * -E2BIG past V2_FORM_MAX_PAIRS, -ENOMEM when the arena is full.
 */
int v2_form_parse(struct v2_form *f, struct arena *a, const char *s,
		  size_t len, char *err, size_t errlen);

/* The first value of key (Go's Form.Get / FormValue), or NULL. */
const struct v2_kv *v2_form_get(const struct v2_form *f, const char *key);

/* Go's strconv.ParseBool: 0 or -EINVAL. */
int v2_parse_bool(const struct v2_kv *kv, int *ret);
/* Go's strconv.ParseUint(s, 10, 64): 0 or -EINVAL (also on overflow). */
int v2_parse_uint(const struct v2_kv *kv, unsigned long long *ret);

#endif
