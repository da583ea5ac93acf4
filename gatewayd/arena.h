/*
 * A bump allocator for one request: the protobuf messages decoded from a
 * request's JSON live in it and go away together with one arena_free.
 */
#ifndef ETCD_GATEWAYD_ARENA_H
#define ETCD_GATEWAYD_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used;  /* bytes handed out, for the limit */
	size_t limit; /* 0: none */
};

#define ARENA_INIT(lim) { NULL, 0, (lim) }

/* Zeroed memory, 16-byte aligned; NULL when out of memory or over limit. */
void *arena_alloc(struct arena *a, size_t size);
/* Releases every allocation. The arena can be used again afterwards. */
void arena_clear(struct arena *a);

#endif
