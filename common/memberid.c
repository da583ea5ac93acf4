/* Member and cluster IDs (etcdserver/api/membership's NewMember and genID). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "memberid.h"

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* sha1 of the pieces, first 8 bytes big-endian. */
static uint64_t sha1_prefix(const void *const *p, const size_t *len, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1)
		abort();
	for (size_t i = 0; i < n; i++)
		EVP_DigestUpdate(ctx, p[i], len[i]);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	return be64(md);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

uint64_t memberid_new(const char *const *urls, size_t n,
		      const char *cluster_name, int64_t unix_s)
{
	const char **sorted = malloc((n ? n : 1) * sizeof(*sorted));
	const void **p = malloc((n + 2) * sizeof(*p));
	size_t *len = malloc((n + 2) * sizeof(*len));
	char ts[24];

	if (!sorted || !p || !len)
		abort(); /* as the arena does: a worker out of memory restarts */
	memcpy(sorted, urls, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(sorted[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		p[i] = sorted[i];
		len[i] = strlen(sorted[i]);
	}
	p[n] = cluster_name;
	len[n] = strlen(cluster_name);
	size_t k = n + 1;
	if (unix_s >= 0) {
		int tn = snprintf(ts, sizeof(ts), "%" PRId64, unix_s);
		p[k] = ts;
		len[k++] = (size_t)tn;
	}
	uint64_t id = sha1_prefix(p, len, k);
	free(sorted);
	free(p);
	free(len);
	return id;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t memberid_cluster(const uint64_t *member_ids, size_t n)
{
	uint64_t s[MEMBERID_MAX_MEMBERS];
	unsigned char b[MEMBERID_MAX_MEMBERS][8];
	const void *p[MEMBERID_MAX_MEMBERS];
	size_t len[MEMBERID_MAX_MEMBERS];

	assert(n <= MEMBERID_MAX_MEMBERS);
	memcpy(s, member_ids, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 8; k++)
			b[i][k] = (unsigned char)(s[i] >> (56 - 8 * k));
		p[i] = b[i];
		len[i] = 8;
	}
	return sha1_prefix(p, len, n);
}
