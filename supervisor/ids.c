/* Member and cluster IDs (etcdserver/api/membership's NewMember and genID). */
#include <stdlib.h>
#include <string.h>

#include <assert.h>

#include <openssl/evp.h>

#include "ids.h"

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

uint64_t ids_member_id(const struct url_list *peer_urls, const char *token)
{
	const void *p[URL_LIST_MAX + 1];
	size_t len[URL_LIST_MAX + 1];
	const char *sorted[URL_LIST_MAX];
	size_t n = peer_urls->n;

	assert(n <= URL_LIST_MAX);
	for (size_t i = 0; i < n; i++)
		sorted[i] = peer_urls->v[i].str;
	qsort(sorted, n, sizeof(sorted[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		p[i] = sorted[i];
		len[i] = strlen(sorted[i]);
	}
	p[n] = token;
	len[n] = strlen(token);
	return sha1_prefix(p, len, n + 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t ids_cluster_id(const uint64_t *member_ids, size_t n)
{
	uint64_t s[IDS_MAX_MEMBERS];
	unsigned char b[IDS_MAX_MEMBERS][8];
	const void *p[IDS_MAX_MEMBERS];
	size_t len[IDS_MAX_MEMBERS];

	assert(n <= IDS_MAX_MEMBERS);
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
