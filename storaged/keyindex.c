/* The in-memory key index: a skiplist of keys, each with its revisions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyindex.h"

#define KI_MAXLEVEL 24

struct keyindex {
	struct ki_node *head; /* sentinel with KI_MAXLEVEL links, no key */
	uint32_t level;       /* levels in use */
	uint64_t rng;
	size_t count;
};

int ki_keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

struct keyindex *ki_new(void)
{
	struct keyindex *ki = calloc(1, sizeof(*ki));
	if (!ki)
		return NULL;
	ki->head = calloc(1, sizeof(struct ki_node) +
				     KI_MAXLEVEL * sizeof(struct ki_node *));
	if (!ki->head) {
		free(ki);
		return NULL;
	}
	ki->head->level = KI_MAXLEVEL;
	ki->level = 1;
	ki->rng = 0x9e3779b97f4a7c15ull;
	return ki;
}

static void node_free(struct ki_node *n)
{
	free(n->revs);
	free(n);
}

void ki_free(struct keyindex *ki)
{
	if (!ki)
		return;
	struct ki_node *n = ki->head->next[0];
	while (n) {
		struct ki_node *next = n->next[0];
		node_free(n);
		n = next;
	}
	free(ki->head);
	free(ki);
}

size_t ki_count(const struct keyindex *ki)
{
	return ki->count;
}

/* Level with probability 1/4 per step up: about 1.33 links per node. */
static uint32_t random_level(struct keyindex *ki)
{
	uint64_t x = ki->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	ki->rng = x;
	uint32_t lvl = 1;
	while (lvl < KI_MAXLEVEL && (x & 3) == 0) {
		lvl++;
		x >>= 2;
	}
	return lvl;
}

/*
 * Fills upd[] with the last node before key at every level, and returns the
 * first node >= key.
 */
static struct ki_node *find_ge(const struct keyindex *ki, const uint8_t *key,
			       size_t len, struct ki_node **upd)
{
	struct ki_node *x = ki->head;
	for (int i = (int)ki->level - 1; i >= 0; i--) {
		while (x->next[i] &&
		       ki_keycmp(x->next[i]->key, x->next[i]->keylen, key, len) < 0)
			x = x->next[i];
		if (upd)
			upd[i] = x;
	}
	return x->next[0];
}

struct ki_node *ki_find(const struct keyindex *ki, const uint8_t *key,
			size_t len)
{
	struct ki_node *n = find_ge(ki, key, len, NULL);
	if (n && n->keylen == len && (len == 0 || memcmp(n->key, key, len) == 0))
		return n;
	return NULL;
}

struct ki_node *ki_seek(const struct keyindex *ki, const uint8_t *key,
			size_t len)
{
	if (!key)
		return ki->head->next[0];
	return find_ge(ki, key, len, NULL);
}

static int revs_push(struct ki_node *n, const struct kirev *r)
{
	if (n->nrevs == n->caprevs) {
		uint32_t cap = n->caprevs ? n->caprevs * 2 : 1;
		struct kirev *revs = realloc(n->revs, cap * sizeof(*revs));
		if (!revs)
			return -ENOMEM;
		n->revs = revs;
		n->caprevs = cap;
	}
	n->revs[n->nrevs++] = *r;
	return 0;
}

/* The node of key, inserted empty if absent. */
static struct ki_node *node_get(struct keyindex *ki, const uint8_t *key,
				size_t len)
{
	struct ki_node *upd[KI_MAXLEVEL];
	struct ki_node *n = find_ge(ki, key, len, upd);
	if (n && ki_keycmp(n->key, n->keylen, key, len) == 0)
		return n;

	uint32_t lvl = random_level(ki);
	n = calloc(1, sizeof(*n) + lvl * sizeof(n->next[0]) + len);
	if (!n)
		return NULL;
	n->level = lvl;
	n->keylen = (uint32_t)len;
	n->key = (uint8_t *)&n->next[lvl];
	if (len)
		memcpy(n->key, key, len);
	if (lvl > ki->level) {
		for (uint32_t i = ki->level; i < lvl; i++)
			upd[i] = ki->head;
		ki->level = lvl;
	}
	for (uint32_t i = 0; i < lvl; i++) {
		n->next[i] = upd[i]->next[i];
		upd[i]->next[i] = n;
	}
	ki->count++;
	return n;
}

/* Unlinks and frees a node that node_get just inserted and left empty. */
static void node_drop(struct keyindex *ki, struct ki_node *n)
{
	struct ki_node *upd[KI_MAXLEVEL];
	find_ge(ki, n->key, n->keylen, upd);
	for (uint32_t i = 0; i < n->level; i++)
		upd[i]->next[i] = n->next[i];
	ki->count--;
	node_free(n);
}

static int node_live(const struct ki_node *n)
{
	return n->nrevs > 0 && !n->revs[n->nrevs - 1].tomb;
}

int ki_put(struct keyindex *ki, const uint8_t *key, size_t len, int64_t main,
	   uint32_t sub, struct ki_node **ret_node)
{
	struct ki_node *n = node_get(ki, key, len);
	if (!n)
		return -ENOMEM;
	int live = node_live(n);
	struct kirev r = { main, sub, 0 };
	if (revs_push(n, &r) < 0) {
		if (n->nrevs == 0)
			node_drop(ki, n);
		return -ENOMEM;
	}
	if (live) {
		n->ver++;
	} else {
		n->create = main;
		n->ver = 1;
	}
	*ret_node = n;
	return 0;
}

int ki_tombstone(struct ki_node *n, int64_t main, uint32_t sub)
{
	struct kirev r = { main, sub, 1 };
	int ret = revs_push(n, &r);
	if (ret < 0)
		return ret;
	n->ver = 0;
	n->create = 0;
	return 0;
}

int ki_restore(struct keyindex *ki, const uint8_t *key, size_t len,
	       const struct kirev *rev, int64_t create, int64_t ver,
	       struct ki_node **ret_node)
{
	struct ki_node *n = node_get(ki, key, len);
	if (!n)
		return -ENOMEM;
	if (revs_push(n, rev) < 0) {
		if (n->nrevs == 0)
			node_drop(ki, n);
		return -ENOMEM;
	}
	n->create = rev->tomb ? 0 : create;
	n->ver = rev->tomb ? 0 : ver;
	if (ret_node)
		*ret_node = n;
	return 0;
}

int ki_get(const struct ki_node *n, int64_t at, struct kirev *ret_rev)
{
	/* Newest first: reads are mostly at the current revision. */
	for (uint32_t i = n->nrevs; i-- > 0;) {
		if (n->revs[i].main <= at) {
			if (n->revs[i].tomb)
				return -ENOENT;
			*ret_rev = n->revs[i];
			return 0;
		}
	}
	return -ENOENT;
}

int ki_compact(struct keyindex *ki, int64_t at,
	       int (*keep)(const struct kirev *rev, void *arg), void *arg)
{
	struct ki_node *upd[KI_MAXLEVEL];
	for (uint32_t i = 0; i < KI_MAXLEVEL; i++)
		upd[i] = ki->head;

	struct ki_node *n = ki->head->next[0];
	while (n) {
		struct ki_node *next = n->next[0];
		/* The newest revision <= at: the value readable at at. */
		int64_t idx = -1;
		for (uint32_t i = n->nrevs; i-- > 0;)
			if (n->revs[i].main <= at) {
				idx = i;
				break;
			}
		if (idx >= 0) {
			uint32_t drop = (uint32_t)idx;
			if (n->revs[idx].tomb)
				drop++;
			else if (keep) {
				int r = keep(&n->revs[idx], arg);
				if (r)
					return r;
			}
			memmove(n->revs, n->revs + drop,
				(n->nrevs - drop) * sizeof(n->revs[0]));
			n->nrevs -= drop;
		}
		if (n->nrevs == 0) {
			for (uint32_t i = 0; i < n->level; i++)
				upd[i]->next[i] = n->next[i];
			ki->count--;
			node_free(n);
		} else {
			if (n->caprevs > 4 && n->nrevs * 4 <= n->caprevs) {
				struct kirev *r = realloc(n->revs,
					n->nrevs * sizeof(*r));
				if (r) {
					n->revs = r;
					n->caprevs = n->nrevs;
				}
			}
			for (uint32_t i = 0; i < n->level; i++)
				upd[i] = n;
		}
		n = next;
	}
	return 0;
}
