/* The growable output buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "jbuf.h"

int jbuf_reserve(struct jbuf *b, size_t n)
{
	if (b->oom)
		return -ENOMEM;
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = 1;
			return -ENOMEM;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -ENOMEM;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void jbuf_add(struct jbuf *b, const void *s, size_t n)
{
	if (n == 0 || jbuf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	char tmp[128];

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		jbuf_add(b, tmp, (size_t)n);
		return;
	}
	if (jbuf_reserve(b, (size_t)n + 1) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void jbuf_clear(struct jbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

char *jbuf_steal(struct jbuf *b, size_t *ret_len)
{
	char *p = b->p;
	*ret_len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}
