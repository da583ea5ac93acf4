/* The intrusive hash map of smap.h. */
#include <errno.h>
#include <stdlib.h>

#include "smap.h"

uint64_t smap_hash_u64(uint64_t v)
{
	/* splitmix64's finaliser: every input bit moves every output bit. */
	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ull;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebull;
	return v ^ (v >> 31);
}

uint64_t smap_hash_bytes(const void *p, size_t len, uint64_t seed)
{
	/* FNV-1a, finished with the mixer so that buckets use the low bits. */
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return smap_hash_u64(h);
}

struct smap_node *smap_find(const struct smap *m, uint64_t hash,
			    smap_eq_fn *eq, const void *key)
{
	if (!m->nb)
		return NULL;
	for (struct smap_node *n = m->b[hash & (m->nb - 1)]; n; n = n->next)
		if (n->hash == hash && eq(n, key))
			return n;
	return NULL;
}

static int grow(struct smap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct smap_node **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct smap_node *n = m->b[i];
		while (n) {
			struct smap_node *next = n->next;
			size_t j = n->hash & (nb - 1);
			n->next = b[j];
			b[j] = n;
			n = next;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int smap_add(struct smap *m, struct smap_node *n, uint64_t hash)
{
	if (m->n >= m->nb && grow(m) < 0)
		return -ENOMEM;
	size_t j = hash & (m->nb - 1);
	n->hash = hash;
	n->next = m->b[j];
	m->b[j] = n;
	m->n++;
	return 0;
}

void smap_del(struct smap *m, struct smap_node *n)
{
	struct smap_node **p = &m->b[n->hash & (m->nb - 1)];
	while (*p != n)
		p = &(*p)->next;
	*p = n->next;
	n->next = NULL;
	m->n--;
}

void smap_clear(struct smap *m)
{
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

static struct smap_node *scan(const struct smap *m, size_t from, size_t *it)
{
	for (size_t i = from; i < m->nb; i++)
		if (m->b[i]) {
			*it = i;
			return m->b[i];
		}
	*it = m->nb;
	return NULL;
}

struct smap_node *smap_first(const struct smap *m, size_t *it)
{
	return scan(m, 0, it);
}

struct smap_node *smap_next(const struct smap *m, const struct smap_node *n,
			    size_t *it)
{
	if (n->next)
		return n->next;
	return scan(m, *it + 1, it);
}
