/* Go's url.ParseQuery and strconv's bool and uint parsing, for the v2 API. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "v2_form.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* url.QueryUnescape of s[0..n) into the arena. */
static int unescape(struct arena *a, const char *s, size_t n, const char **ret,
		    size_t *ret_len, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%')
			continue;
		if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
			size_t bad = n - i > 3 ? 3 : n - i;
			snprintf(err, errlen, "invalid URL escape \"%.*s\"", (int)bad,
				 s + i);
			return -EINVAL;
		}
		i += 2;
	}
	char *out = arena_alloc(a, n + 1);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	return 0;
}

int v2_form_parse(struct v2_form *f, struct arena *a, const char *s,
		  size_t len, char *err, size_t errlen)
{
	int first = 0;
	char e[128];
	size_t i = 0;
	while (i < len) {
		const char *amp = memchr(s + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - s) : len;
		const char *pair = s + i;
		size_t plen = end - i;
		i = end + 1;
		if (memchr(pair, ';', plen)) {
			if (!first) {
				first = -EINVAL;
				snprintf(err, errlen, "invalid semicolon separator in query");
			}
			continue;
		}
		if (plen == 0)
			continue;
		const char *eq = memchr(pair, '=', plen);
		size_t klen = eq ? (size_t)(eq - pair) : plen;
		struct v2_kv kv;
		int r = unescape(a, pair, klen, &kv.k, &kv.klen, e, sizeof(e));
		if (r == 0) {
			const char *v = eq ? eq + 1 : "";
			size_t vlen = eq ? plen - klen - 1 : 0;
			r = unescape(a, v, vlen, &kv.v, &kv.vlen, e, sizeof(e));
		}
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			if (!first) {
				first = r;
				snprintf(err, errlen, "%s", e);
			}
			continue;
		}
		if (f->n == V2_FORM_MAX_PAIRS)
			return -E2BIG;
		f->kv[f->n++] = kv;
	}
	return first;
}

const struct v2_kv *v2_form_get(const struct v2_form *f, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < f->n; i++)
		if (f->kv[i].klen == kl && memcmp(f->kv[i].k, key, kl) == 0)
			return &f->kv[i];
	return NULL;
}

int v2_parse_bool(const struct v2_kv *kv, int *ret)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(kv->v, yes[i]) == 0 && kv->vlen == strlen(yes[i])) {
			*ret = 1;
			return 0;
		}
		if (strcmp(kv->v, no[i]) == 0 && kv->vlen == strlen(no[i])) {
			*ret = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int v2_parse_uint(const struct v2_kv *kv, unsigned long long *ret)
{
	unsigned long long v = 0;
	if (kv->vlen == 0 || kv->vlen != strlen(kv->v))
		return -EINVAL;
	for (size_t i = 0; i < kv->vlen; i++) {
		unsigned d = (unsigned)(kv->v[i] - '0');
		if (d > 9 || v > (~0ULL - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}
