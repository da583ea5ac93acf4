/*
 * Unit test of storaged/keyindex.c: ordered iteration from a lower bound,
 * generations and tombstones, reads at old revisions and compaction as
 * etcd's keyIndex does it, checked against a plain sorted model.
 */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "keyindex.h"

static struct ki_node *put(struct keyindex *ki, const char *k, int64_t main)
{
	struct ki_node *n;
	CHECK(ki_put(ki, (const uint8_t *)k, strlen(k), main, 0, &n) == 0);
	return n;
}

static struct ki_node *find(struct keyindex *ki, const char *k)
{
	return ki_find(ki, (const uint8_t *)k, strlen(k));
}

static int64_t get(struct keyindex *ki, const char *k, int64_t at)
{
	struct ki_node *n = find(ki, k);
	struct kirev r;
	if (!n || ki_get(n, at, &r) < 0)
		return 0;
	return r.main;
}

static int64_t kept[8];
static int nkept;

static int keep(const struct kirev *r, void *arg)
{
	(void)arg;
	kept[nkept++] = r->main;
	return 0;
}

static void test_generations(void)
{
	struct keyindex *ki = ki_new();
	CHECK(ki);
	struct ki_node *n = put(ki, "foo", 2);
	CHECK_EQ(n->create, 2);
	CHECK_EQ(n->ver, 1);
	n = put(ki, "foo", 4);
	CHECK_EQ(n->create, 2);
	CHECK_EQ(n->ver, 2);
	CHECK(ki_tombstone(n, 6, 0) == 0);
	CHECK_EQ(n->ver, 0);
	n = put(ki, "foo", 8);
	CHECK_EQ(n->create, 8);
	CHECK_EQ(n->ver, 1);

	CHECK_EQ(get(ki, "foo", 1), 0);
	CHECK_EQ(get(ki, "foo", 2), 2);
	CHECK_EQ(get(ki, "foo", 3), 2);
	CHECK_EQ(get(ki, "foo", 5), 4);
	CHECK_EQ(get(ki, "foo", 6), 0);
	CHECK_EQ(get(ki, "foo", 7), 0);
	CHECK_EQ(get(ki, "foo", 9), 8);

	/* Compaction at 5 keeps rev 4 (readable at 5) and what follows. */
	CHECK(ki_compact(ki, 5, keep, NULL) == 0);
	CHECK_EQ(nkept, 1);
	CHECK_EQ(kept[0], 4);
	CHECK_EQ(n->nrevs, 3);
	CHECK_EQ(get(ki, "foo", 5), 4);
	/* At 6 the tombstone is the newest: it goes with everything before. */
	nkept = 0;
	CHECK(ki_compact(ki, 6, keep, NULL) == 0);
	CHECK_EQ(nkept, 0);
	CHECK_EQ(n->nrevs, 1);
	CHECK_EQ(get(ki, "foo", 9), 8);

	/* A key whose last revision is a compacted tombstone disappears. */
	n = put(ki, "bar", 10);
	CHECK(ki_tombstone(n, 11, 0) == 0);
	CHECK_EQ(ki_count(ki), 2);
	CHECK(ki_compact(ki, 12, NULL, NULL) == 0);
	CHECK(find(ki, "bar") == NULL);
	CHECK_EQ(ki_count(ki), 1);
	CHECK(find(ki, "foo") != NULL);
	ki_free(ki);
	ki_free(NULL);
}

static void test_restore(void)
{
	struct keyindex *ki = ki_new();
	struct kirev r1 = { 3, 0, 0 }, r2 = { 5, 1, 0 }, r3 = { 7, 0, 1 };
	CHECK(ki_restore(ki, (const uint8_t *)"k", 1, &r1, 2, 4, NULL) == 0);
	CHECK(ki_restore(ki, (const uint8_t *)"k", 1, &r2, 2, 5, NULL) == 0);
	struct ki_node *n = find(ki, "k");
	CHECK_EQ(n->create, 2);
	CHECK_EQ(n->ver, 5);
	/* A put continues the restored generation. */
	n = put(ki, "k", 6);
	CHECK_EQ(n->ver, 6);
	CHECK(ki_restore(ki, (const uint8_t *)"k", 1, &r3, 0, 0, NULL) == 0);
	CHECK_EQ(n->ver, 0);
	CHECK_EQ(get(ki, "k", 7), 0);
	CHECK_EQ(get(ki, "k", 5), 5);
	ki_free(ki);
}

/* A sorted model of the key set, for ordered iteration. */
static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_order(void)
{
	enum { N = 5000 };
	struct keyindex *ki = ki_new();
	static char keys[N][16];
	static char *sorted[N];
	uint64_t x = 12345;
	int n = 0;
	for (int i = 0; i < N; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(keys[i], sizeof(keys[i]), "k%llu",
			 (unsigned long long)(x >> 40));
		if (!find(ki, keys[i]))
			sorted[n++] = keys[i];
		put(ki, keys[i], i + 2);
	}
	qsort(sorted, n, sizeof(sorted[0]), cmpstr);
	CHECK_EQ(ki_count(ki), n);

	int i = 0;
	for (struct ki_node *nd = ki_seek(ki, NULL, 0); nd; nd = ki_next(nd), i++)
		CHECK(nd->keylen == strlen(sorted[i]) &&
		      memcmp(nd->key, sorted[i], nd->keylen) == 0);
	CHECK_EQ(i, n);

	/* A lower bound between keys lands on the next one. */
	for (int j = 0; j < n; j += 97) {
		char lb[20];
		snprintf(lb, sizeof(lb), "%s", sorted[j]);
		lb[strlen(lb) - 1]--;
		struct ki_node *nd = ki_seek(ki, (const uint8_t *)sorted[j],
					     strlen(sorted[j]));
		CHECK(nd && nd->keylen == strlen(sorted[j]));
		nd = ki_seek(ki, (const uint8_t *)lb, strlen(lb));
		CHECK(nd);
		CHECK(ki_keycmp(nd->key, nd->keylen, (const uint8_t *)lb,
				strlen(lb)) >= 0);
	}

	/* Delete every other key, compact: those keys leave the list. */
	for (int j = 0; j < n; j += 2)
		CHECK(ki_tombstone(find(ki, sorted[j]), N + 10 + j, 0) == 0);
	CHECK(ki_compact(ki, 2 * N + 20, NULL, NULL) == 0);
	CHECK_EQ(ki_count(ki), n / 2);
	i = 1;
	for (struct ki_node *nd = ki_seek(ki, NULL, 0); nd; nd = ki_next(nd), i += 2)
		CHECK(nd->keylen == strlen(sorted[i]) &&
		      memcmp(nd->key, sorted[i], nd->keylen) == 0);
	/* Seeking still works after removals at every level. */
	for (int j = 1; j < n; j += 2)
		CHECK(find(ki, sorted[j]) != NULL);
	for (int j = 0; j < n; j += 2)
		CHECK(find(ki, sorted[j]) == NULL);
	ki_free(ki);
}

static void test_binary_keys(void)
{
	struct keyindex *ki = ki_new();
	struct ki_node *n;
	const uint8_t k0[] = { 0 }, k1[] = { 0, 0 }, k2[] = { 0xff }, k3[] = { 'a', 0 };
	CHECK(ki_put(ki, k2, 1, 2, 0, &n) == 0);
	CHECK(ki_put(ki, k1, 2, 3, 0, &n) == 0);
	CHECK(ki_put(ki, k3, 2, 4, 0, &n) == 0);
	CHECK(ki_put(ki, k0, 1, 5, 0, &n) == 0);
	n = ki_seek(ki, NULL, 0);
	CHECK(n->keylen == 1 && n->key[0] == 0);
	n = ki_next(n);
	CHECK(n->keylen == 2 && n->key[1] == 0);
	n = ki_next(n);
	CHECK(n->keylen == 2 && n->key[0] == 'a');
	n = ki_next(n);
	CHECK(n->keylen == 1 && n->key[0] == 0xff);
	CHECK(ki_next(n) == NULL);
	ki_free(ki);
}

int main(void)
{
	test_generations();
	test_restore();
	test_order();
	test_binary_keys();
	return 0;
}
