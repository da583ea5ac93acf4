/*
 * A hash map from 64-bit keys to pointers (open addressing, linear probing,
 * backward-shift deletion): pending requests by ID, connections by address.
 */
#ifndef ETCD_GATEWAYD_U64MAP_H
#define ETCD_GATEWAYD_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map {
	struct u64map_slot {
		uint64_t key;
		void *val; /* NULL: free slot */
	} *slot;
	size_t cap, n;
};

/* Adds or replaces; val must not be NULL. 0 or -ENOMEM. */
int u64map_put(struct u64map *m, uint64_t key, void *val);
void *u64map_get(const struct u64map *m, uint64_t key);
/* Removes key; returns its value or NULL. */
void *u64map_del(struct u64map *m, uint64_t key);
void u64map_clear(struct u64map *m);

#endif
