/* Bump allocation in chunks, released all at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define CHUNK_SIZE 4096u
#define ALIGN 16u

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, off;
	_Alignas(16) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (size == 0)
		size = ALIGN;
	if (a->limit && (size > a->limit || a->used > a->limit - size))
		return NULL;
	struct arena_chunk *c = a->head;
	if (!c || c->size - c->off < size) {
		/* Big requests get a chunk of their own, behind the head so the
		 * head's free space is not wasted. */
		size_t csize = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
		struct arena_chunk *n = malloc(sizeof(*n) + csize);
		if (!n)
			return NULL;
		n->size = csize;
		n->off = 0;
		if (c && csize != CHUNK_SIZE) {
			n->next = c->next;
			c->next = n;
		} else {
			n->next = c;
			a->head = n;
		}
		c = n;
	}
	void *p = c->data + c->off;
	c->off += size;
	a->used += size;
	memset(p, 0, size);
	return p;
}

void arena_clear(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}
