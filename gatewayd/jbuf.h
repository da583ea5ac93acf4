/*
 * A growable output buffer for the JSON we write. Its bytes are handed to
 * evhttp by reference (jbuf_steal), so a response is never copied.
 */
#ifndef ETCD_GATEWAYD_JBUF_H
#define ETCD_GATEWAYD_JBUF_H

#include <stddef.h>
#include <string.h>

struct jbuf {
	char *p;
	size_t len, cap;
	int oom; /* an allocation failed: the content is truncated */
};

#define JBUF_INIT { NULL, 0, 0, 0 }

/* Makes room for n more bytes; 0 or -ENOMEM (then oom is set). */
int jbuf_reserve(struct jbuf *b, size_t n);
void jbuf_add(struct jbuf *b, const void *s, size_t n);
void jbuf_printf(struct jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Frees the bytes; the buffer can be used again. */
void jbuf_clear(struct jbuf *b);
/* Gives the bytes (malloc'd) to the caller and empties b. */
char *jbuf_steal(struct jbuf *b, size_t *ret_len);

static inline void jbuf_putc(struct jbuf *b, char c)
{
	if (b->len < b->cap || jbuf_reserve(b, 1) == 0)
		b->p[b->len++] = c;
}

static inline void jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_add(b, s, strlen(s));
}

#endif
