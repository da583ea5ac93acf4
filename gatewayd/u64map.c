/* The 64-bit key hash map. */
#include <errno.h>
#include <stdlib.h>

#include "u64map.h"

static size_t slot_of(uint64_t key, size_t cap)
{
	/* Fibonacci hashing: sequential IDs and aligned pointers spread. */
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static int grow(struct u64map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct u64map_slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slot[i].val)
			continue;
		size_t j = slot_of(m->slot[i].key, cap);
		while (s[j].val)
			j = (j + 1) & (cap - 1);
		s[j] = m->slot[i];
	}
	free(m->slot);
	m->slot = s;
	m->cap = cap;
	return 0;
}

int u64map_put(struct u64map *m, uint64_t key, void *val)
{
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -ENOMEM;
	size_t j = slot_of(key, m->cap);
	while (m->slot[j].val) {
		if (m->slot[j].key == key) {
			m->slot[j].val = val;
			return 0;
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->slot[j].key = key;
	m->slot[j].val = val;
	m->n++;
	return 0;
}

void *u64map_get(const struct u64map *m, uint64_t key)
{
	if (m->n == 0)
		return NULL;
	for (size_t j = slot_of(key, m->cap); m->slot[j].val;
	     j = (j + 1) & (m->cap - 1))
		if (m->slot[j].key == key)
			return m->slot[j].val;
	return NULL;
}

void *u64map_del(struct u64map *m, uint64_t key)
{
	if (m->n == 0)
		return NULL;
	size_t mask = m->cap - 1, j = slot_of(key, m->cap);
	while (m->slot[j].val && m->slot[j].key != key)
		j = (j + 1) & mask;
	void *val = m->slot[j].val;
	if (!val)
		return NULL;
	/* Backward shift: pull later members of the cluster into the hole
	 * unless their home slot lies cyclically after it. */
	size_t hole = j;
	for (size_t k = (j + 1) & mask; m->slot[k].val; k = (k + 1) & mask) {
		size_t home = slot_of(m->slot[k].key, m->cap);
		if (((k - home) & mask) >= ((k - hole) & mask)) {
			m->slot[hole] = m->slot[k];
			hole = k;
		}
	}
	m->slot[hole].val = NULL;
	m->n--;
	return val;
}

void u64map_clear(struct u64map *m)
{
	free(m->slot);
	m->slot = NULL;
	m->cap = m->n = 0;
}
