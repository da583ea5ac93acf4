/*
 * A bump allocator for short-lived object trees: a request's decoded
 * protobuf messages (gatewayd), one apply batch's responses (storaged).
 * Everything is freed at once, so a tree needs no per-node destructor.
 */
#ifndef ETCD_COMMON_ARENA_H
#define ETCD_COMMON_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head; /* the chunk being filled; older ones follow */
	size_t used;              /* bytes used in head */
	size_t total;             /* bytes handed out since the last clear */
	size_t limit;             /* 0: none; past it allocations fail */
	ProtobufCAllocator pb;    /* protobuf_c_message_unpack into the arena */
};

/*
 * limit bounds what one arena may hand out before the next clear (a client
 * controls how much a request decodes into). Without a limit, running out of
 * memory aborts: the worker is restarted, and no caller could do better.
 */
void arena_init(struct arena *a, size_t limit);
/* Frees every allocation, keeping one chunk for the next round. */
void arena_clear(struct arena *a);
/* Frees everything; the arena may be initialised again. NULL-safe. */
void arena_done(struct arena *a);

/* n bytes aligned for any type, valid until the next clear; NULL past the
 * limit. arena_zalloc zeroes them. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);

/* A protobuf-c message of type T, initialised with INIT, in the arena. */
#define ARENA_NEW(a, T, INIT) ((T *)arena_memdup((a), &(T)INIT, sizeof(T)))

#endif
