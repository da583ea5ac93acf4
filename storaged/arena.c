/* The bump allocator behind one batch's or one query's responses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_CHUNK (64u << 10)
#define ARENA_ALIGN 16u

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

void arena_init(struct arena *a)
{
	memset(a, 0, sizeof(*a));
	a->pb.alloc = pb_alloc;
	a->pb.free = pb_free;
	a->pb.allocator_data = a;
}

static struct arena_chunk *chunk_new(size_t size)
{
	struct arena_chunk *c = malloc(sizeof(*c) + size);
	if (!c) {
		fputs("storaged: out of memory\n", stderr);
		abort();
	}
	c->next = NULL;
	c->size = size;
	return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (!a->head || a->head->size - a->used < n) {
		/* Large requests get a chunk of their own behind the head. */
		if (n > ARENA_CHUNK / 4 && a->head) {
			struct arena_chunk *c = chunk_new(n);
			c->next = a->head->next;
			a->head->next = c;
			a->total += n;
			return c->data;
		}
		struct arena_chunk *c = chunk_new(n > ARENA_CHUNK ? n : ARENA_CHUNK);
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
	memset(p, 0, n);
	return p;
}

void *arena_memdup(struct arena *a, const void *p, size_t n)
{
	void *q = arena_alloc(a, n);
	if (n)
		memcpy(q, p, n);
	return q;
}

void arena_clear(struct arena *a)
{
	if (!a->head)
		return;
	/* Keep one standard chunk: the next batch likely needs it. */
	struct arena_chunk *keep = NULL, *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		if (!keep && c->size == ARENA_CHUNK)
			keep = c;
		else
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
	arena_clear(a);
	free(a->head);
	a->head = NULL;
}
