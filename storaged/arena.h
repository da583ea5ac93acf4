/*
 * A bump allocator for the short-lived objects of one apply batch or one
 * query: responses built from protobuf-c structs, and key-values unpacked
 * from RocksDB. Everything is freed at once by arena_clear(), so a response
 * tree needs no per-node destructor.
 */
#ifndef STORAGED_ARENA_H
#define STORAGED_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head; /* the chunk being filled; older ones follow */
	size_t used;              /* bytes used in head */
	size_t total;             /* bytes handed out since the last clear */
	ProtobufCAllocator pb;    /* unpacks into this arena */
};

void arena_init(struct arena *a);
/* Frees every chunk but one (kept for the next round). */
void arena_clear(struct arena *a);
/* Frees everything; the arena may be initialised again. */
void arena_done(struct arena *a);

/*
 * n bytes aligned for any type, valid until the next clear. Allocation
 * failure aborts the process: a worker out of memory is restarted by the
 * supervisor, and no caller could do better.
 */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);

/* A protobuf-c message of type T, initialised with INIT, in the arena. */
#define ARENA_NEW(a, T, INIT) ((T *)arena_memdup((a), &(T)INIT, sizeof(T)))

#endif
