/* Bump allocation in growing chunks, released all at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ALIGN 16u
#define CHUNK_MIN (4u << 10)
#define CHUNK_MAX (64u << 10)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	_Alignas(16) unsigned char data[];
};

static void *pb_alloc(void *ctx, size_t n)
{
	return arena_alloc(ctx, n);
}

static void pb_free(void *ctx, void *p)
{
	/* Freed with the arena. */
	(void)ctx;
	(void)p;
}

void arena_init(struct arena *a, size_t limit)
{
	memset(a, 0, sizeof(*a));
	a->limit = limit;
	a->pb.alloc = pb_alloc;
	a->pb.free = pb_free;
	a->pb.allocator_data = a;
}

static struct arena_chunk *chunk_new(size_t size)
{
	struct arena_chunk *c = malloc(sizeof(*c) + size);
	if (!c) {
		fputs("etcd: out of memory\n", stderr);
		abort();
	}
	c->next = NULL;
	c->size = size;
	return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (n == 0)
		n = ALIGN;
	if (a->limit && (n > a->limit || a->total > a->limit - n))
		return NULL;
	if (!a->head || a->head->size - a->used < n) {
		if (n > CHUNK_MAX / 4) {
			/* A big object gets a chunk of its own, behind the
			 * head, so the head's free room is not wasted. */
			struct arena_chunk *c = chunk_new(n);
			if (a->head) {
				c->next = a->head->next;
				a->head->next = c;
			} else {
				a->head = c;
				a->used = n;
			}
			a->total += n;
			return c->data;
		}
		/* Chunks double, so small arenas stay small. */
		size_t size = a->head ? a->head->size * 2 : CHUNK_MIN;
		if (size > CHUNK_MAX)
			size = CHUNK_MAX;
		if (size < n)
			size = n;
		struct arena_chunk *c = chunk_new(size);
		c->next = a->head;
		a->head = c;
		a->used = 0;
	}
	void *p = a->head->data + a->used;
	a->used += n;
	a->total += n;
	return p;
}

void *arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);
	if (p)
		memset(p, 0, n);
	return p;
}

void *arena_memdup(struct arena *a, const void *p, size_t n)
{
	void *q = arena_alloc(a, n);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

void arena_clear(struct arena *a)
{
	if (!a->head)
		return;
	/* Keep the head if it is a standard chunk: the next round likely
	 * needs about as much. */
	struct arena_chunk *keep = a->head->size <= CHUNK_MAX ? a->head : NULL;
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		if (c != keep)
			free(c);
		c = next;
	}
	a->head = keep;
	if (keep)
		keep->next = NULL;
	a->used = 0;
	a->total = 0;
}

void arena_done(struct arena *a)
{
	if (!a)
		return;
	arena_clear(a);
	free(a->head);
	a->head = NULL;
}
