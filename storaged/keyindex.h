/*
 * The in-memory key index, as etcd's keyIndex tree: for every key, the
 * revisions at which it was written, in order, with tombstones closing each
 * generation. Ordered by key bytes (an ordered skiplist), so ranges iterate
 * from a lower bound. Rebuilt at start from the "key" column family; the
 * key-values themselves stay in RocksDB.
 */
#ifndef STORAGED_KEYINDEX_H
#define STORAGED_KEYINDEX_H

#include <stddef.h>
#include <stdint.h>

/* A revision (main, sub) and whether it deletes the key. */
struct kirev {
	int64_t main;
	uint32_t sub;
	uint32_t tomb;
};

struct ki_node {
	struct kirev *revs; /* owned; oldest first */
	uint32_t nrevs, caprevs;
	int64_t create;     /* create revision of the live generation */
	int64_t ver;        /* version of the live generation; 0 when deleted */
	int64_t lease;      /* lease of the live value; 0: none (lessor's) */
	uint32_t lease_slot; /* index in that lease's key list (lessor's) */
	uint32_t keylen;
	uint32_t level;
	uint8_t *key;       /* points past next[level], in the same allocation */
	struct ki_node *next[];
};

struct keyindex;

struct keyindex *ki_new(void);
/* NULL is a no-op. */
void ki_free(struct keyindex *ki);
/* Keys with at least one revision. */
size_t ki_count(const struct keyindex *ki);

/* The node of exactly key, or NULL. */
struct ki_node *ki_find(const struct keyindex *ki, const uint8_t *key,
			size_t len);
/* The first node with key >= key (NULL key: the first), or NULL. */
struct ki_node *ki_seek(const struct keyindex *ki, const uint8_t *key,
			size_t len);
static inline struct ki_node *ki_next(const struct ki_node *n)
{
	return n->next[0];
}

/* memcmp order of byte strings, shorter first on a common prefix. */
int ki_keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * Records a put of key at rev (newer than every revision of key). On success
 * *ret_node is the key's node: its create and ver describe the new value.
 * -ENOMEM on allocation failure (index unchanged).
 */
int ki_put(struct keyindex *ki, const uint8_t *key, size_t len, int64_t main,
	   uint32_t sub, struct ki_node **ret_node);
/* Records a delete of n's live generation at rev. -ENOMEM as above. */
int ki_tombstone(struct ki_node *n, int64_t main, uint32_t sub);
/*
 * Rebuild at start: a revision read from the store, given in revision order,
 * with the create revision and version stored in its key-value. *ret_node
 * (may be NULL) is the key's node.
 */
int ki_restore(struct keyindex *ki, const uint8_t *key, size_t len,
	       const struct kirev *rev, int64_t create, int64_t ver,
	       struct ki_node **ret_node);

/*
 * The revision holding n's value at revision at: 0 and *ret_rev set if the
 * key was live then, -ENOENT if it did not exist or was deleted.
 */
int ki_get(const struct ki_node *n, int64_t at, struct kirev *ret_rev);

/*
 * Compaction at revision at, as etcd's keyIndex.compact: drops every revision
 * older than the newest one <= at, drops that one too if it is a tombstone,
 * and drops keys left with nothing. keep (may be NULL) is called with every
 * revision <= at that stays (the value readable at at), in key order.
 * Returns 0 or the first non-zero value keep returned (stops there).
 */
int ki_compact(struct keyindex *ki, int64_t at,
	       int (*keep)(const struct kirev *rev, void *arg), void *arg);

#endif
