/*
 * A small intrusive hash map (chained, power-of-two buckets, doubling): the
 * watch hub's watchers by id and groups by key range, the lessor's leases by
 * ID. The caller embeds a struct smap_node in its objects, computes the hash
 * and supplies the equality test; the map owns no memory but its buckets.
 */
#ifndef STORAGED_SMAP_H
#define STORAGED_SMAP_H

#include <stddef.h>
#include <stdint.h>

struct smap_node {
	struct smap_node *next;
	uint64_t hash;
};

struct smap {
	struct smap_node **b;
	size_t nb;    /* buckets, a power of two (0 before the first add) */
	size_t n;     /* nodes */
};

/* Hashes of the keys we use. */
uint64_t smap_hash_u64(uint64_t v);
uint64_t smap_hash_bytes(const void *p, size_t len, uint64_t seed);

/* eq(node, key) says whether node holds key. */
typedef int smap_eq_fn(const struct smap_node *n, const void *key);

struct smap_node *smap_find(const struct smap *m, uint64_t hash,
			    smap_eq_fn *eq, const void *key);
/* Adds n (not already in the map) with hash. 0 or -ENOMEM. */
int smap_add(struct smap *m, struct smap_node *n, uint64_t hash);
/* Removes n, which must be in the map. */
void smap_del(struct smap *m, struct smap_node *n);
/* Frees the buckets (the nodes are the caller's). */
void smap_clear(struct smap *m);

/*
 * Iteration: for (n = smap_first(m, &i); n; n = smap_next(m, n, &i)).
 * To remove the current node, take its successor first; adding during an
 * iteration may regrow the buckets and is not allowed.
 */
struct smap_node *smap_first(const struct smap *m, size_t *it);
struct smap_node *smap_next(const struct smap *m, const struct smap_node *n,
			    size_t *it);

#define smap_entry(ptr, type, member)                                          \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
